using System.Globalization;
using Akka.Configuration;

namespace Backprop.Clustering;

/// <summary>
/// Where a node listens and how it finds the cluster. Every value can come from a flag, an
/// environment variable (BACKPROP_HOST, BACKPROP_PUBLIC_HOST, BACKPROP_PORT, BACKPROP_COORDINATOR,
/// BACKPROP_MAX_FRAME, BACKPROP_TLS_CERT, BACKPROP_TLS_PASSWORD, BACKPROP_TLS_CA) or a HOCON file
/// given with --config, in that order of precedence.
/// </summary>
/// <param name="Role">"coordinator" or "worker".</param>
/// <param name="Host">The address to bind to (0.0.0.0 for every interface).</param>
/// <param name="PublicHost">The address other nodes use to reach this one (defaults to <paramref name="Host"/>).</param>
/// <param name="Port">The TCP port (0: any free port; the coordinator's is the seed, 4053 by default).</param>
/// <param name="Coordinator">host:port of the coordinator (the seed node); null on the coordinator itself.</param>
/// <param name="MaximumFrameBytes">Largest message this node sends or accepts.</param>
/// <param name="ConfigFile">Extra HOCON that overrides everything else.</param>
/// <param name="LogLevel">Akka's log level: WARNING by default, INFO to see membership and every worker event.</param>
/// <param name="DataPort">The tensor channel's TCP port (0: any free port), on the same host as the cluster port.</param>
/// <param name="Tls">The node's certificate and the cluster's CA: mutual TLS on Akka.Remote and the tensor channel (null: off, unless a --config file sets backprop.tls).</param>
public sealed record NodeSettings(
    string Role,
    string Host = "127.0.0.1",
    string? PublicHost = null,
    int Port = 0,
    string? Coordinator = null,
    int MaximumFrameBytes = NodeSettings.DefaultMaximumFrameBytes,
    string? ConfigFile = null,
    string LogLevel = "WARNING",
    int DataPort = 0,
    TlsFiles? Tls = null)
{
    /// <summary>
    /// Where this node's tensor channel listens: <see cref="Host"/> and <see cref="DataPort"/>, reached at
    /// <see cref="PublicHost"/>, with the node's TLS (from <see cref="ToConfig"/>, so a --config file's
    /// backprop.tls counts too).
    /// </summary>
    public Channel.ChannelSettings Channel => new(Host, DataPort, PublicHost) { Tls = NodeTls.FromConfig(ToConfig()) };

    /// <summary>The actor system's name on every node.</summary>
    public const string SystemName = "backprop";
    /// <summary>The coordinator's port unless told otherwise.</summary>
    public const int DefaultCoordinatorPort = 4053;
    /// <summary>64 MiB: a 16-million-parameter model in float32, with room for the envelope.</summary>
    public const int DefaultMaximumFrameBytes = 64 << 20;
    /// <summary>Akka.Remote's own default frame size.</summary>
    public const int AkkaDefaultFrameBytes = 128000;
    /// <summary>The roles of the two kinds of node.</summary>
    public const string CoordinatorRole = "coordinator", WorkerRole = "worker";
    /// <summary>Room for the Akka envelope around a tensor message.</summary>
    public const int EnvelopeHeadroomBytes = 64 << 10;

    /// <summary>
    /// The node's actor system on <paramref name="config"/> (this node's <see cref="ToConfig"/>, perhaps under
    /// a --config file). A port that cannot be listened on (taken, not an address of this machine, not
    /// allowed) is an <see cref="InvalidInputException"/> naming the address and the system's reason,
    /// not an exception from deep inside the transport.
    /// </summary>
    public Akka.Actor.ActorSystem CreateSystem(Config config)
    {
        var port = config.GetInt("akka.remote.dot-netty.tcp.port", Port);
        var host = config.GetString("akka.remote.dot-netty.tcp.hostname", Host);
        // The transport binds with SO_REUSEADDR, which .NET on Linux pairs with SO_REUSEPORT: a second
        // node on a taken port would bind too and share the first one's connections. Ask first.
        if (port != 0 && SomethingListensOn(host, port))
            throw new InvalidInputException($"cannot listen on {host}:{port}: another process is listening there (another coordinator?); choose another --port");
        // An address of no interface here fails inside the transport, which logs an ERROR with a stack
        // trace first; find it out before.
        if (CannotBind(host, port) is { } reason)
            throw new InvalidInputException($"cannot listen on {host}:{port} ({reason}); choose another --host or --port");
        var parting = new PartingFilter();
        // Mutual TLS: the certificate and its check go to Akka as a setup, since Akka's own check trusts
        // the system's CA store, not the cluster's CA (see NodeTls).
        var tls = NodeTls.FromConfig(config);
        if (tls is not null) config = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = on").WithFallback(config);
        if (NodeTls.IsOn(config))
        {
            // With TLS the transport's scheme is akka.ssl.tcp; seed nodes named akka.tcp would be unreachable.
            var seeds = config.GetStringList("akka.cluster.seed-nodes", []);
            if (seeds.Any(s => s.StartsWith("akka.tcp://", StringComparison.Ordinal)))
            {
                var list = string.Join(", ", seeds.Select(s => Quote(s.StartsWith("akka.tcp://", StringComparison.Ordinal) ? "akka.ssl.tcp://" + s["akka.tcp://".Length..] : s)));
                config = ConfigurationFactory.ParseString($"akka.cluster.seed-nodes = [{list}]").WithFallback(config);
            }
        }
        var setup = Akka.Actor.BootstrapSetup.Create().WithConfig(config).And(parting.Setup());
        if (tls is not null) setup = setup.And(tls.AkkaSetup());
        Akka.Actor.ActorSystem system;
        try
        {
            system = Akka.Actor.ActorSystem.Create(SystemName, setup);
        }
        catch (Exception e) when (Innermost<System.Net.Sockets.SocketException>(e) is { } socket)
        {
            throw new InvalidInputException($"cannot listen on {host}:{port} ({socket.Message}); choose another --host or --port", e);
        }
        parting.Attach(system);
        // A node that is shutting down expects its peers to hang up.
        Akka.Actor.CoordinatedShutdown.Get(system).AddTask(Akka.Actor.CoordinatedShutdown.PhaseBeforeServiceUnbind, "expect-parting", () =>
        {
            parting.RunIsOver();
            return Task.FromResult(Akka.Done.Instance);
        });
        return system;
    }

    /// <summary>
    /// Declares <paramref name="system"/>'s run over: peers that disconnect from now on are leaving, and
    /// the transport's reports of it are not logged (see <see cref="PartingFilter"/>).
    /// </summary>
    public static void RunIsOver(Akka.Actor.ActorSystem system) => PartingFilter.For(system)?.RunIsOver();

    /// <summary>Undoes <see cref="RunIsOver"/>: a node that takes part in a run again logs what its transport reports.</summary>
    public static void RunHasStarted(Akka.Actor.ActorSystem system) => PartingFilter.For(system)?.RunHasStarted();

    /// <summary>Why a TCP socket cannot bind to <paramref name="host"/>:<paramref name="port"/> (on any of its addresses), or null if one can.</summary>
    private static string? CannotBind(string host, int port)
    {
        System.Net.IPAddress[] addresses;
        try
        {
            addresses = System.Net.IPAddress.TryParse(host, out var literal) ? [literal] : System.Net.Dns.GetHostAddresses(host);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return e.Message;
        }
        string? reason = null;
        foreach (var address in addresses)
        {
            try
            {
                using var socket = new System.Net.Sockets.Socket(address.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReuseAddress, true);
                socket.Bind(new System.Net.IPEndPoint(address, port));
                return null;
            }
            catch (System.Net.Sockets.SocketException e)
            {
                reason ??= e.Message;
            }
        }
        return reason;
    }

    /// <summary>Whether a TCP connection to <paramref name="host"/>:<paramref name="port"/> is accepted (the wildcard host: on this machine).</summary>
    private static bool SomethingListensOn(string host, int port)
    {
        var target = host is "0.0.0.0" or "::" or "[::]" ? "127.0.0.1" : host;
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            return client.ConnectAsync(target, port).Wait(TimeSpan.FromSeconds(1)) && client.Connected;
        }
        catch (Exception e) when (e is AggregateException or System.Net.Sockets.SocketException or ArgumentException)
        {
            return false;
        }
    }

    private static T? Innermost<T>(Exception? e) where T : Exception
    {
        T? found = null;
        var seen = new HashSet<Exception>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<Exception>();
        if (e is not null) pending.Push(e);
        while (pending.Count > 0)
        {
            var next = pending.Pop();
            if (!seen.Add(next)) continue;
            if (next is T match) found = match;
            if (next is AggregateException aggregate) foreach (var inner in aggregate.InnerExceptions) pending.Push(inner);
            else if (next.InnerException is not null) pending.Push(next.InnerException);
        }
        return found;
    }

    /// <summary>The frame a model of <paramref name="parameterCount"/> float32 parameters needs: the tensor and an envelope's headroom.</summary>
    public static long FrameBytesFor(int parameterCount) => 4L * parameterCount + EnvelopeHeadroomBytes;

    /// <summary>The frame to configure for such a model: what it needs, at least Akka's default, at most what the setting holds.</summary>
    public static int FrameSettingFor(int parameterCount) => (int)Math.Clamp(FrameBytesFor(parameterCount), AkkaDefaultFrameBytes, int.MaxValue);

    /// <summary>"akka.tcp://backprop@host:port" of the coordinator (akka.ssl.tcp with TLS, which <see cref="SeedAddressOn"/> knows).</summary>
    public string? SeedAddress => Coordinator is null ? null : $"akka.tcp://{SystemName}@{Coordinator}";

    /// <summary>The coordinator's address in the scheme <paramref name="system"/>'s transport speaks (akka.tcp, or akka.ssl.tcp with TLS).</summary>
    public Akka.Actor.Address? SeedAddressOn(Akka.Actor.ActorSystem system)
    {
        if (SeedAddress is not { } seed) return null;
        var parsed = Akka.Actor.Address.Parse(seed);
        return new Akka.Actor.Address(Akka.Cluster.Cluster.Get(system).SelfAddress.Protocol, parsed.System, parsed.Host, parsed.Port);
    }

    /// <summary>
    /// The warning to print when this node would listen, without TLS, on an address other machines can
    /// reach; null when TLS is on or the address is a loopback one.
    /// </summary>
    public string? OpenClusterWarning()
    {
        if (NodeTls.IsOn(ToConfig()) || IsLoopback(Host)) return null;
        return $"warning: TLS is off and this node listens on {Host}: anyone who can reach its ports (--port, --data-port) can join the cluster, read the model and send it gradients; see --tls-cert (docs/cluster.md, \"TLS\")";
    }

    private static bool IsLoopback(string host)
    {
        if (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var address)) return System.Net.IPAddress.IsLoopback(address);
        try
        {
            var addresses = System.Net.Dns.GetHostAddresses(host);
            return addresses.Length > 0 && addresses.All(System.Net.IPAddress.IsLoopback);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>The actor-system configuration of this node.</summary>
    public Config ToConfig()
    {
        var seeds = SeedAddress is { } seed ? $"[\"{seed}\"]" : "[]";
        var frame = Math.Max(MaximumFrameBytes, 32000).ToString(CultureInfo.InvariantCulture);
        var buffers = Math.Max(256000, Math.Min(MaximumFrameBytes, 16 << 20)).ToString(CultureInfo.InvariantCulture);
        var config = ConfigurationFactory.ParseString($$"""
            akka {
              loglevel = {{LogLevel}}
              stdout-loglevel = WARNING
              log-dead-letters = 0
              log-dead-letters-during-shutdown = off
              actor.provider = cluster
              remote {
                log-remote-lifecycle-events = off
                dot-netty.tcp {
                  hostname = "{{Host}}"
                  public-hostname = "{{PublicHost ?? Host}}"
                  port = {{Port}}
                  # Derived from the model size (see FrameBytesFor); the same on every node.
                  maximum-frame-size = {{frame}}b
                  send-buffer-size = {{buffers}}b
                  receive-buffer-size = {{buffers}}b
                }
              }
              cluster {
                roles = ["{{Role}}"]
                seed-nodes = {{seeds}}
                # The coordinator's side of a partition survives: static quorum of one coordinator.
                downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
                split-brain-resolver {
                  active-strategy = static-quorum
                  static-quorum { quorum-size = 1, role = "{{CoordinatorRole}}" }
                  stable-after = 5s
                  down-all-when-unstable = off
                }
                # Faster than the defaults (pause 3 s, stable-after 20 s): a lost worker's part of a
                # step moves as soon as it is unreachable; removal follows stable-after later.
                failure-detector {
                  heartbeat-interval = 1s
                  acceptable-heartbeat-pause = 2s
                  threshold = 8.0
                }
                run-coordinated-shutdown-when-down = on
              }
              coordinated-shutdown.run-by-clr-shutdown-hook = on
            }
            """).WithFallback(RuntimeConfig.Common);
        if (Tls is { } files)
        {
            var tls = $"{NodeTls.ConfigPath}.certificate = {Quote(files.Certificate)}\n";
            if (files.Password is { } password) tls += $"{NodeTls.ConfigPath}.password = {Quote(password)}\n";
            if (files.Authority is { } authority) tls += $"{NodeTls.ConfigPath}.ca = {Quote(authority)}\n";
            config = ConfigurationFactory.ParseString(tls).WithFallback(config);
        }
        if (ConfigFile is not null)
        {
            if (!File.Exists(ConfigFile)) throw new InvalidInputException($"--config {ConfigFile}: file not found");
            try
            {
                config = ConfigurationFactory.ParseString(File.ReadAllText(ConfigFile)).WithFallback(config);
            }
            catch (Exception e) when (e is not InvalidInputException)
            {
                throw new InvalidInputException($"--config {ConfigFile}: not valid HOCON ({e.Message})", e);
            }
        }
        return config;
    }

    /// <summary>Parses "host:port" (IPv6 hosts in brackets); the error names the option.</summary>
    public static (string Host, int Port) ParseEndpoint(string text, string option, int defaultPort)
    {
        var value = text.Trim();
        string host;
        var port = defaultPort;
        var colon = value.LastIndexOf(':');
        if (colon > 0 && value.IndexOf(']', StringComparison.Ordinal) < colon)
        {
            host = value[..colon];
            if (!int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
                throw new InvalidInputException($"{option} '{text}': '{value[(colon + 1)..]}' is not a port number (0-65535)");
        }
        else
        {
            host = value;
        }
        if (host.Length == 0) throw new InvalidInputException($"{option} '{text}': no host name");
        return (host, port);
    }
}
