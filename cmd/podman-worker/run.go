package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/httpapi"
	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/logsink"
	"github.com/podman-worker/podman-worker/handlers"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// process is what the program takes from the operating system. main
// fills it from the real process; tests run the whole program in-process
// with their own.
type process struct {
	args   []string
	getenv func(string) string
	pid    int
	stdin  io.Reader
	// stdout carries the protocol and nothing else; logs go to stderr.
	stdout, stderr io.Writer
}

// logDelay bounds how long an info or debug line may wait to be written
// (see logsink): what a kill -9 can take from the log.
const logDelay = 10 * time.Millisecond

// run is the whole program behind main: it reads the configuration, opens
// what the worker holds one step at a time, serves, and closes what it
// opened in the order held.close spells out.
func run(ctx context.Context, p process) int {
	cfg, code, done := configure(p)
	if done {
		return code
	}
	var h held
	code = serve(ctx, p, cfg, &h)
	h.close()
	return code
}

// held is what run opened. close releases it in the one order that works,
// whatever step serving ended at: the metrics listener first; then the
// handlers, so the prewarm pools stop making containers and let go of
// theirs; then the connections, which remove the worker's containers;
// then the embedded Podman service, once its containers are gone; and the
// log last, so every other step's lines reach it.
type held struct {
	stopMetrics func()
	svc         *handlers.Service
	conns       *podman.Connections
	embedded    *embeddedService
	sink        *logsink.Writer
}

func (h *held) close() {
	if h.stopMetrics != nil {
		h.stopMetrics()
	}
	if h.svc != nil {
		h.svc.Close()
	}
	if h.conns != nil {
		h.conns.Close()
	}
	if h.embedded != nil {
		h.embedded.stop()
	}
	if h.sink != nil {
		_ = h.sink.Flush()
	}
}

// flushLog writes the log's waiting lines, before a message that must
// come after them.
func (h *held) flushLog() {
	if h.sink != nil {
		_ = h.sink.Flush()
	}
}

// configure reads the flags; done says the program ends here with code:
// --help, --version, a refused setting, or a per-call CLI line that needs
// no Podman (its help or argparse's refusal).
func configure(p process) (cfg *config, code int, done bool) {
	cfg, err := parseConfig(expandSocketPrefix(p.args), p.getenv, p.stdout) // --help prints on stdout
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0, true
	}
	if err != nil {
		fmt.Fprintf(p.stderr, "podman-worker: %v\n", err)
		return nil, 2, true
	}
	if cfg.showVersion {
		fmt.Fprintf(p.stdout, "podman-worker %s\n", version)
		return nil, 0, true
	}
	if len(cfg.cliArgs) > 0 {
		if code, done := cliRefusal(cfg.cliArgs, p.stdout, p.stderr); done {
			return nil, code, true
		}
	}
	return cfg, 0, false
}

// serve opens the log, the Podman connections and the handlers into h,
// then serves the per-call CLI's one call, the HTTP API or JSON-RPC on
// stdio until the end.
func serve(ctx context.Context, p process, cfg *config, h *held) int {
	log := openLog(cfg, p, h)
	socket, destinations, err := chooseSocket(ctx, cfg, p, log, h)
	if err != nil {
		h.flushLog() // the lines before it first
		fmt.Fprintf(p.stderr, "podman-worker: %v\n", err)
		return 2
	}
	if h.conns, err = connect(ctx, cfg, socket, destinations, p.pid, log); err != nil {
		h.flushLog()
		fmt.Fprintf(p.stderr, "podman-worker: %v\n", err)
		return 2
	}
	a := newApp(ctx, cfg, h.conns, log, p.pid)
	h.svc = a.svc
	log.Info().Str("version", version).Str("socket", h.conns.Default().URI()).Strs("connections", h.conns.Names()).Int("max_workers", cfg.maxWorkers).Msg("serving")
	if len(cfg.cliArgs) > 0 {
		// Through the dispatcher, as a call on stdio would go: its panic
		// recovery, log line and limits included.
		return runCLI(ctx, a.server.Call, cfg.cliArgs, p.stdin, p.stdout, p.stderr)
	}
	if cfg.metrics.Addr != "" {
		if h.stopMetrics, err = a.serveMetrics(ctx, cfg.metrics); err != nil {
			fmt.Fprintf(p.stderr, "podman-worker: --metrics-addr: %v\n", err)
			return 2
		}
	}
	if cfg.http.addr != "" {
		return serveHTTP(ctx, a, cfg, log, p.stderr)
	}
	return serveStdio(ctx, a, cfg, log, p)
}

// openLog makes the worker's logger. Serving, the log's lines are gathered
// into a few writes (warnings and worse at once, info within logDelay):
// one write per call's line was the largest step of the worker's own share
// of a ping. The per-call CLI makes one call, and its callers read its
// stderr as it comes. In both, a writer is never written by two goroutines
// at once (a test's buffer is not safe for that the way a file is).
func openLog(cfg *config, p process, h *held) zerolog.Logger {
	var logOut io.Writer = zerolog.SyncWriter(p.stderr)
	if len(cfg.cliArgs) == 0 {
		h.sink = logsink.New(p.stderr, logDelay, 64<<10)
		logOut = h.sink
	}
	log := zerolog.New(logOut).Level(cfg.logLevel).With().Timestamp().Logger()
	if len(cfg.cliArgs) > 0 && cfg.logLevel > zerolog.DebugLevel {
		// The per-call CLI's callers parse stderr as its error envelope.
		log = zerolog.Nop()
	}
	routeLogrus(log)
	return log
}

// chooseSocket finds the default connection's socket: the configured one;
// else none when Podman's own list names a default; else the first of the
// usual sockets that answers; else an embedded service's, started into h.
// Podman's own list, when asked for, comes back too.
func chooseSocket(ctx context.Context, cfg *config, p process, log zerolog.Logger, h *held) (string, []podman.Destination, error) {
	var destinations []podman.Destination
	if cfg.podmanConnections {
		var err error
		if destinations, err = podman.PodmanDestinations(); err != nil {
			return "", nil, fmt.Errorf("--podman-connections: %v", err)
		}
	}
	if cfg.socketSet {
		return cfg.socket, destinations, nil
	}
	for _, d := range destinations {
		if d.Default {
			return "", destinations, nil // Podman's default is the default
		}
	}
	for _, candidate := range defaultSockets(p.getenv) {
		if answers(candidate) {
			return candidate, destinations, nil
		}
	}
	embedded, err := startEmbedded(ctx, cfg.podmanRoot, cfg.podmanConf, p.pid, log)
	if err != nil {
		// Serve anyway: calls answer Unavailable naming the socket.
		log.Error().Err(err).Msg("no podman service: calls that need it will fail")
		return DefaultSocket, destinations, nil
	}
	h.embedded = embedded
	return "unix://" + embedded.socket, destinations, nil
}

// connect makes the connections, keeps every socket that drives Podman out
// of the containers' mounts, and connects them all at once. Connecting goes
// on in the background when it takes longer than 2 s: the worker serves
// meanwhile, and each call waits at most its own deadline.
func connect(ctx context.Context, cfg *config, socket string, destinations []podman.Destination, pid int, log zerolog.Logger) (*podman.Connections, error) {
	conns, err := newConnections(cfg, socket, destinations, pid, log)
	if err != nil {
		return nil, err
	}
	for _, c := range conns.All() {
		if path := socketPath(c.URI()); path != "" {
			cfg.policy.NeverMount = append(cfg.policy.NeverMount, path)
		}
	}
	cfg.policy.NeverMount = limits.NeverMountPaths(cfg.policy.NeverMount...)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range conns.All() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Connect(cctx); err != nil {
				log.Warn().Err(err).Str("connection", c.Name()).Msg("podman is not reachable yet; calls that need it fail with Unavailable until it answers")
			}
		}()
	}
	wg.Wait()
	return conns, nil
}

// newApp makes the handlers, the Prometheus exporter and the dispatcher.
func newApp(ctx context.Context, cfg *config, conns *podman.Connections, log zerolog.Logger, pid int) *app {
	a := &app{
		conns: conns, log: log, calls: rpc.NewMetrics(), started: time.Now(), grace: cfg.shutdownGrace, pid: pid,
		svc: handlers.New(conns, log, handlers.Options{
			Policy: cfg.policy, MaxOutputBytes: int(cfg.maxOutputBytes), RequestTimeout: cfg.requestTimeout,
			MaxWarm: cfg.maxWarm, MaxInputBytes: int(cfg.maxInputBytes), Instances: cfg.instances,
			Registries: cfg.registries,
		}),
	}
	a.prom = a.newExporter(cfg)
	a.server = rpc.NewServer(a.methods(), rpc.Options{
		MaxWorkers:     cfg.maxWorkers,
		MaxLineBytes:   int(cfg.maxLineBytes),
		MaxQueued:      cfg.maxQueued,
		MaxQueuedBytes: int(cfg.maxQueuedBytes),
		Control:        []string{"health", "metrics", "shutdown"}, // answered while every worker slot is busy
		Logger:         log,
		Observe:        a.observe, // the JSON metrics' counts and Prometheus' alike
		Redact:         handlers.Redact,
		Order:          handlers.ContainerKey,
		Ready:          a.ready(ctx),
	})
	return a
}

// serveStdio serves JSON-RPC on stdin and stdout until stdin ends, a
// shutdown call, or a signal, which shuts down gracefully.
func serveStdio(ctx context.Context, a *app, cfg *config, log zerolog.Logger, p process) int {
	go func() {
		<-ctx.Done()
		// NotifyContext's cause names the signal: "terminated signal received".
		log.Info().Str("signal", context.Cause(ctx).Error()).Dur("grace", cfg.shutdownGrace).Msg("shutting down")
		a.server.Shutdown(cfg.shutdownGrace)
	}()
	// Serve's own context is not the signal's: a signal shuts down
	// gracefully through Shutdown instead of cancelling every call at once.
	if err := a.server.Serve(context.WithoutCancel(ctx), p.stdin, p.stdout); err != nil {
		log.Error().Err(err).Msg("stopped")
		return 1
	}
	log.Info().Msg("stopped; every call was answered")
	return 0
}

// serveHTTP serves the Flask Podman API on cfg.http.addr until a signal,
// then drains it; run's clean-up (held.close) then removes the containers,
// as after the protocol's end. stdin is not read.
func serveHTTP(ctx context.Context, a *app, cfg *config, log zerolog.Logger, stderr io.Writer) int {
	ln, err := net.Listen("tcp", cfg.http.addr)
	if err != nil {
		fmt.Fprintf(stderr, "podman-worker: --http: %v\n", err)
		return 2
	}
	// Through the dispatcher, as calls read from stdin: the same worker
	// slots, queue bounds (429 Busy), log line, metrics and shutdown.
	srv := httpapi.New(a.server.Call, httpapi.Options{
		Token:        cfg.http.token,
		MaxBodyBytes: cfg.http.maxBody,
		// The stdio queue's byte bound bounds the bodies in flight too.
		MaxBodyBytesInFlight: cfg.maxQueuedBytes,
		CORSOrigins:          cfg.http.corsOrigins,
		ReadHeaderTimeout:    cfg.http.headerTimeout,
		// Long enough for any call: a stop or exec within the request
		// timeout, a run within the longest timeout a caller may ask for,
		// and a minute for the wait for a worker slot.
		WriteTimeout: max(cfg.requestTimeout, cfg.policy.MaxTimeout) + time.Minute,
		Grace:        cfg.shutdownGrace,
		Log:          log,
		Metrics:      a.prom.Handler(),
	})
	// The bound address: with port 0 the kernel picked it.
	log.Info().Str("addr", ln.Addr().String()).Bool("token", cfg.http.token != "").Strs("cors_origins", cfg.http.corsOrigins).Msg("serving http")
	go func() {
		<-ctx.Done()
		log.Info().Str("signal", context.Cause(ctx).Error()).Dur("grace", cfg.shutdownGrace).Msg("shutting down")
		// Calls dispatched by the server get the same grace as requests.
		a.server.Shutdown(cfg.shutdownGrace)
	}()
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error().Err(err).Msg("stopped")
		return 1
	}
	log.Info().Msg("stopped; every request was answered")
	return 0
}

// newConnections makes a client for every connection: the socket (named
// "default"), Podman's own connections when asked for, and --connection's.
// A --connection hides Podman's connection of the same name. The default
// is the socket when there is one, else Podman's default. Every client
// shares the worker's identity: containers are labelled with the same
// worker whichever host runs them.
func newConnections(cfg *config, socket string, destinations []podman.Destination, pid int, log zerolog.Logger) (*podman.Connections, error) {
	type spec struct{ name, uri, identity, source string }
	var specs []spec
	def := podman.DefaultName
	if socket != "" {
		specs = append(specs, spec{podman.DefaultName, socket, "", "--socket"})
	}
	flagged := map[string]bool{}
	for _, c := range cfg.connections {
		flagged[c.name] = true
	}
	for _, d := range destinations {
		if d.Default && socket == "" {
			def = d.Name
		}
		if flagged[d.Name] || socket != "" && d.Name == podman.DefaultName {
			log.Warn().Str("connection", d.Name).Msg("Podman's connection of this name is hidden by the worker's own")
			continue
		}
		if d.TLS {
			log.Warn().Str("connection", d.Name).Str("uri", d.URI).Msg("left out: the worker does not support TLS client certificates")
			continue
		}
		specs = append(specs, spec{d.Name, d.URI, d.Identity, "Podman's connection " + d.Name})
	}
	for _, c := range cfg.connections {
		if socket != "" && c.name == podman.DefaultName {
			return nil, fmt.Errorf("--connection %s=%s: %q names the --socket connection; choose another name", c.name, c.uri, c.name)
		}
		specs = append(specs, spec{c.name, c.uri, c.identity, "--connection " + c.name})
	}
	id := podman.Self(cfg.owner, pid)
	var clients []*podman.Client
	for _, sp := range specs {
		ssh := cfg.ssh
		if sp.identity != "" {
			ssh.Identity = sp.identity
		}
		c, err := podman.New(sp.uri, podman.Options{
			Name: sp.name, MaxConns: cfg.maxWorkers, Identity: id, SSH: ssh, SharedImages: cfg.policy.SharedImages,
			Log: log.With().Str("connection", sp.name).Logger(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %v", sp.source, err)
		}
		clients = append(clients, c)
	}
	return podman.NewConnections(def, clients...)
}

// logrusMu guards the bindings' global logrus logger, which routeLogrus
// points at the current run's logger (tests run the program more than once
// in one process).
var logrusMu sync.Mutex

// routeLogrus sends the bindings' logrus output into the worker's zerolog
// stream, so stderr holds JSON lines only. It replaces the hooks rather than
// adding one per run.
func routeLogrus(log zerolog.Logger) {
	logrusMu.Lock()
	defer logrusMu.Unlock()
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.WarnLevel)
	if log.GetLevel() <= zerolog.DebugLevel {
		logrus.SetLevel(logrus.DebugLevel)
	}
	hooks := logrus.LevelHooks{}
	hooks.Add(logrusHook{log.With().Str("component", "podman-bindings").Logger()})
	logrus.StandardLogger().ReplaceHooks(hooks)
}

type logrusHook struct{ log zerolog.Logger }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := zerolog.DebugLevel
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		level = zerolog.ErrorLevel
	case logrus.WarnLevel:
		level = zerolog.WarnLevel
	case logrus.InfoLevel:
		level = zerolog.InfoLevel
	}
	h.log.WithLevel(level).Fields(map[string]any(e.Data)).Msg(e.Message)
	return nil
}
