package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"

	"github.com/podman-worker/podman-worker/handlers"
	"github.com/podman-worker/podman-worker/rpc"
)

// run is the whole program behind main, so tests can drive it in-process.
// stdout carries the protocol and nothing else; logs go to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "podman-worker: %v\n", err)
		return 2
	}
	if cfg.showVersion {
		fmt.Fprintf(stdout, "podman-worker %s\n", version)
		return 0
	}

	log := zerolog.New(stderr).Level(cfg.logLevel).With().Timestamp().Logger()
	if len(cfg.cliArgs) > 0 && cfg.logLevel > zerolog.DebugLevel {
		// The per-call CLI's callers parse stderr as its error envelope.
		log = zerolog.Nop()
	}
	routeLogrus(log)

	socket := cfg.socket
	if !cfg.socketSet {
		socket = ""
		for _, candidate := range defaultSockets(os.Getenv) {
			if answers(candidate) {
				socket = candidate
				break
			}
		}
		if socket == "" {
			embedded, err := startEmbedded(ctx, cfg.podmanRoot, cfg.podmanConf, log)
			if err != nil {
				// Serve anyway: calls answer Unavailable naming the socket.
				log.Error().Err(err).Msg("no podman service: calls that need it will fail")
				socket = DefaultSocket
			} else {
				socket = "unix://" + embedded.socket
				defer embedded.stop() // after svc.Close below has removed its containers
			}
		}
	}
	podman, err := handlers.NewPodman(socket, cfg.maxWorkers, log)
	if err != nil {
		fmt.Fprintf(stderr, "podman-worker: --socket: %v\n", err)
		return 2
	}
	if err := podman.Connect(ctx); err != nil {
		log.Warn().Err(err).Msg("podman is not reachable yet; calls that need it fail with Unavailable until it answers")
	}

	calls := rpc.NewMetrics()
	var server *rpc.Server
	svc := handlers.New(podman, log, handlers.Options{
		Policy: cfg.policy, MaxOutputBytes: int(cfg.maxOutputBytes),
		Calls: calls, Load: func() rpc.Stats { return server.Stats() },
		RequestTimeout: cfg.requestTimeout,
		Shutdown: func() {
			log.Info().Dur("grace", cfg.shutdownGrace).Msg("shutdown requested by a call")
			server.Shutdown(cfg.shutdownGrace)
		},
	})
	defer svc.Close()
	server = rpc.NewServer(svc.Methods(), rpc.Options{
		MaxWorkers:   cfg.maxWorkers,
		MaxLineBytes: int(cfg.maxLineBytes),
		Control:      []string{"health", "metrics", "shutdown"}, // answered while every worker slot is busy
		Logger:       log,
		Observe:      calls.Observe,
		Redact:       handlers.Redact,
		Ready: func() (string, any) {
			return "worker.ready", readyParams{Version: version, PID: os.Getpid(), Podman: svc.PodmanStatus(ctx)}
		},
	})
	log.Info().Str("version", version).Str("socket", podman.URI()).Int("max_workers", cfg.maxWorkers).Msg("serving")
	if len(cfg.cliArgs) > 0 {
		return runCLI(ctx, svc.Methods(), cfg.cliArgs, stdout, stderr)
	}
	go func() {
		<-ctx.Done()
		// NotifyContext's cause names the signal: "terminated signal received".
		log.Info().Str("signal", context.Cause(ctx).Error()).Dur("grace", cfg.shutdownGrace).Msg("shutting down")
		server.Shutdown(cfg.shutdownGrace)
	}()
	// Serve's own context is not the signal's: a signal shuts down
	// gracefully through Shutdown instead of cancelling every call at once.
	if err := server.Serve(context.WithoutCancel(ctx), stdin, stdout); err != nil {
		log.Error().Err(err).Msg("stopped")
		return 1
	}
	log.Info().Msg("stopped; every call was answered")
	return 0
}

// readyParams is the worker.ready notification: the first line the worker
// writes, once it can serve.
type readyParams struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	Podman  any    `json:"podman"`
}

// routeLogrus sends the bindings' logrus output into the worker's zerolog
// stream, so stderr holds JSON lines only.
func routeLogrus(log zerolog.Logger) {
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.WarnLevel)
	if log.GetLevel() <= zerolog.DebugLevel {
		logrus.SetLevel(logrus.DebugLevel)
	}
	logrus.AddHook(logrusHook{log.With().Str("component", "podman-bindings").Logger()})
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
