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
// users type it (--socket URI: the metavar from flagTable), with its default.
func printUsage(fs *flag.FlagSet, specs []flagSpec, w io.Writer) {
	metavars := map[string]string{}
	for _, f := range specs {
		metavars[f.name] = f.metavar
	}
	var b strings.Builder
	b.WriteString(usageHead)
	fs.VisitAll(func(f *flag.Flag) {
		_, help := flag.UnquoteUsage(f)
		b.WriteString("  --" + f.Name)
		if m := metavars[f.Name]; m != "" {
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
