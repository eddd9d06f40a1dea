package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/rpc"
)

// version is the worker's version, set at build time by the Makefile.
var version = "dev"

// DefaultSocket is the seed client's default Podman socket.
const DefaultSocket = "/run/podman/podman.sock"

type config struct {
	socket       string
	maxWorkers   int
	maxLineBytes int64
	logLevel     zerolog.Level
	showVersion  bool
}

// parseConfig reads flags, falling back to environment variables, so a
// supervisor can configure the worker either way. Invalid settings are an
// error that names the setting.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	fs := flag.NewFlagSet("podman-worker", flag.ContinueOnError)
	fs.SetOutput(usage)
	envOr := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	socket := fs.String("socket", "", "Podman socket: unix:///PATH, a PATH, or tcp://HOST:PORT (env PODMAN_SOCKET_PATH, then CONTAINER_HOST; default "+DefaultSocket+")")
	maxWorkers := fs.String("max-workers", envOr("MAX_WORKERS", strconv.Itoa(rpc.DefaultMaxWorkers)), "calls run at once; more wait their turn (env MAX_WORKERS)")
	maxLine := fs.String("max-line-bytes", envOr("MAX_LINE_BYTES", "16m"), "longest accepted input line, e.g. 16m (env MAX_LINE_BYTES)")
	logLevel := fs.String("log-level", envOr("LOG_LEVEL", "info"), "log level on stderr: debug, info, warn, error (env LOG_LEVEL)")
	debug := fs.Bool("debug", false, "same as --log-level debug (env DEBUG=true)")
	showVersion := fs.Bool("version", false, "print the worker's version and exit")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: podman-worker [flags]\n\nSpeaks newline-delimited JSON-RPC 2.0 on stdin/stdout; logs JSON on stderr. See protocol.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	cfg := &config{showVersion: *showVersion}
	cfg.socket = firstNonEmpty(*socket, getenv("PODMAN_SOCKET_PATH"), getenv("CONTAINER_HOST"), DefaultSocket)

	n, err := strconv.Atoi(*maxWorkers)
	if err != nil || n < 1 || n > 1024 {
		return nil, fmt.Errorf("--max-workers / MAX_WORKERS: %q must be a whole number from 1 to 1024", *maxWorkers)
	}
	cfg.maxWorkers = n

	size, err := limits.ParseBytes(*maxLine)
	if err != nil || size < 1024 || size > 1<<30 {
		return nil, fmt.Errorf("--max-line-bytes / MAX_LINE_BYTES: %q must be a size from 1k to 1g such as 16m", *maxLine)
	}
	cfg.maxLineBytes = size

	level := strings.ToLower(*logLevel)
	if *debug || isTrue(getenv("DEBUG")) {
		level = "debug"
	}
	cfg.logLevel, err = zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return nil, fmt.Errorf("--log-level / LOG_LEVEL: %q must be one of debug, info, warn, error", *logLevel)
	}
	return cfg, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func isTrue(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}
