// The worker node's command line. Joining a coordinator across machines comes with the cluster
// work; today `backprop train --workers N` runs N worker actors inside the coordinator's process.
Console.Error.WriteLine("backprop-worker: joining a remote coordinator is not available in this version; use 'backprop train --workers N'.");
return 2;
