// The worker node's command line. The gradient worker actor and cluster joining arrive with the
// actor-protocol and cluster work; until then the executable only explains itself.
Console.Error.WriteLine("backprop-worker: the worker node is not available in this version; train with 'backprop train'.");
return 2;
