package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/argparse"
)

// usageHead says what the worker does in each of its modes, and where its
// Podman service comes from when no socket is given.
const usageHead = `Usage:
  podman-worker [flags]                serve JSON-RPC 2.0 on stdin/stdout (protocol.md)
  podman-worker [flags] --http ADDR    serve the Flask Podman API over HTTP (operations.md)
  podman-worker [flags] COMMAND ...    run one command of the per-call CLI and print its envelope:
                                       version ping info build images exists inspect rmi prune run ps kill rm
                                       (podman-worker COMMAND --help for its options)

Podman: the socket of --socket, else of PODMAN_SOCKET_PATH or CONTAINER_HOST; with none
given, ` + DefaultSocket + ` or the user's rootless socket if one answers, else the worker
starts a Podman service of its own (storage in --podman-root, settings that fit this
host) and stops it when it exits.

The safe defaults close what untrusted code should not have; each flag below opens
one thing: builds (--build-roots), host paths (--mount-roots), named volumes
(--allow-named-volumes), networks and ports (--network-modes, --port-addresses).

Flags (each also read from the environment variable it names):
`

// printUsage prints the help: what the worker does, then every flag as
// users type it (--socket VALUE), with its default.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	var b strings.Builder
	b.WriteString(usageHead)
	fs.VisitAll(func(f *flag.Flag) {
		_, help := flag.UnquoteUsage(f)
		b.WriteString("  --" + f.Name)
		if m := metavar(f); m != "" {
			b.WriteString(" " + m)
		}
		b.WriteString("\n")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			help += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		for _, line := range argparse.WrapWords(help, 84) {
			b.WriteString("      " + line + "\n")
		}
	})
	io.WriteString(w, b.String())
}

// dashName finds the flag package's single-dash spelling of a flag name.
var dashName = regexp.MustCompile(`(^|[\s:])-([a-z][a-z0-9-]*)`)

// flagError is a flag parsing error in one line, with flags spelled as
// users type them and a pointer to --help.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := dashName.ReplaceAllString(err.Error(), "$1--$2")
	msg = strings.Replace(msg, "flag provided but not defined: ", "unknown flag ", 1)
	return fmt.Errorf("%s (podman-worker --help lists the flags)", msg)
}

// metavar is what a flag's value is, in the help: nothing for a switch.
func metavar(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return ""
	}
	n := f.Name
	switch {
	case n == "socket":
		return "URI"
	case n == "connection":
		return "NAME=URI[,IDENTITY]"
	case n == "http" || strings.HasSuffix(n, "-addr"):
		return "ADDR"
	case strings.HasSuffix(n, "-file") || n == "identity" || n == "known-hosts" || n == "podman-conf":
		return "FILE"
	case strings.HasSuffix(n, "-roots"):
		return "DIR[,DIR...]"
	case n == "podman-root":
		return "DIR"
	case strings.HasSuffix(n, "timeout") || n == "shutdown-grace":
		return "DURATION"
	case strings.HasSuffix(n, "-bytes") || strings.HasPrefix(n, "max-memory") || n == "max-build-context" || n == "http-max-body":
		return "SIZE"
	case n == "max-cpus":
		return "CPUS"
	case strings.HasPrefix(n, "max-"):
		return "N"
	case n == "log-level":
		return "LEVEL"
	case n == "owner":
		return "NAME"
	case n == "userns":
		return "MODE"
	}
	return "LIST"
}
