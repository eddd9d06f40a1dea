package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/podman-worker/podman-worker/rpc"
)

// The drop-in replacement for the per-call CLI (podman_client.py): the same
// commands, flags and defaults, one call per process, the same envelope:
// {"success": true, "data": ...} on stdout, or {"success": false,
// "error": ..., "exit_code"?} on stderr with a non-zero exit. Each command
// builds the params of the worker method of the same name and calls it, so
// both modes share one implementation.

// cliCommand turns a command's arguments into its method's params.
type cliCommand struct {
	positional []string // names of the positional arguments, in order
	flags      func(fs *flag.FlagSet, p map[string]any)
}

// Flags repeat the seed CLI's spelling; params use the worker's names.
var cliCommands = map[string]cliCommand{
	"version": {},
	"ping":    {},
	"info": {flags: func(fs *flag.FlagSet, p map[string]any) {
		str(fs, p, "format", "format", "Go template, e.g. {{.Host.Arch}}")
	}},
	"build": {positional: []string{"context"}, flags: func(fs *flag.FlagSet, p map[string]any) {
		str(fs, p, "tag", "tag", "image tag", "t")
		str(fs, p, "file", "file", "Dockerfile name (default Dockerfile)", "f")
		list(fs, p, "build-arg", "build_args", "build argument KEY=VALUE (repeatable)")
		str(fs, p, "platform", "platform", "target platform, e.g. linux/amd64")
		boolean(fs, p, "no-cache", "no_cache", "do not use the build cache")
		boolean(fs, p, "force", "force", "rebuild even if the tag exists")
	}},
	"images": {flags: func(fs *flag.FlagSet, p map[string]any) {
		boolean(fs, p, "all", "all", "all images, intermediate ones too")
	}},
	"exists": {positional: []string{"image"}},
	"inspect": {positional: []string{"image"}, flags: func(fs *flag.FlagSet, p map[string]any) {
		str(fs, p, "format", "format", "Go template, e.g. {{.Size}}")
	}},
	"rmi": {positional: []string{"image"}, flags: func(fs *flag.FlagSet, p map[string]any) {
		boolean(fs, p, "force", "force", "remove even if containers use it")
	}},
	"prune": {},
	"run": {positional: []string{"image"}, flags: func(fs *flag.FlagSet, p map[string]any) {
		str(fs, p, "name", "name", "container name")
		str(fs, p, "entrypoint", "entrypoint", "entrypoint to run")
		boolean(fs, p, "detach", "detach", "accepted; run always waits (default true)", "d")
		list(fs, p, "port", "ports", "port mapping HOST:CONTAINER (repeatable)", "p")
		list(fs, p, "env", "env", "environment variable KEY=VALUE (repeatable)", "e")
		list(fs, p, "volume", "volumes", "volume HOST:CONTAINER (repeatable)", "v")
		list(fs, p, "mount", "mounts", "mount source:target:relabel,propagation,size (repeatable)", "m")
		str(fs, p, "run-command", "command", "command to run, under /bin/sh -c", "c")
		negated(fs, p, "no-auto-remove", "auto_remove", "keep the container after it exits")
		str(fs, p, "network-mode", "network_mode", "network mode (default none)")
		str(fs, p, "memory", "memory", "memory limit (default 20m)")
		str(fs, p, "memory-swap", "memory_swap", "memory+swap limit (default 20m)")
		num(fs, p, "cpus", "cpus", "number of CPUs (default 0.5)")
		num(fs, p, "timeout", "timeout", "timeout in seconds (default 5)")
		str(fs, p, "workdir", "workdir", "working directory in the container", "w")
	}},
	"ps": {flags: func(fs *flag.FlagSet, p map[string]any) {
		boolean(fs, p, "all", "all", "stopped containers too")
	}},
	"kill": {positional: []string{"container"}, flags: func(fs *flag.FlagSet, p map[string]any) {
		str(fs, p, "signal", "signal", "signal to send (default SIGKILL)")
	}},
	"rm": {positional: []string{"container"}, flags: func(fs *flag.FlagSet, p map[string]any) {
		boolean(fs, p, "force", "force", "remove even if running")
	}},
}

// runCLI runs one seed CLI command through methods and prints the envelope.
func runCLI(ctx context.Context, methods map[string]rpc.Method, args []string, stdout, stderr io.Writer) int {
	name, args := args[0], args[1:]
	cmd, ok := cliCommands[name]
	if !ok {
		return cliFail(stderr, fmt.Sprintf("unknown command %q; commands: version ping info build images exists inspect rmi prune run ps kill rm", name), nil)
	}
	params, err := cliParams(name, cmd, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return cliFail(stderr, err.Error(), nil)
	}
	if c, ok := params["context"].(string); ok && name == "build" && c != "" && !filepath.IsAbs(c) {
		// The CLI's caller means its own working directory, as podman
		// build does; the protocol takes relative contexts as relative to
		// the first build root instead.
		if abs, err := filepath.Abs(c); err == nil {
			params["context"] = abs
		}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return cliFail(stderr, err.Error(), nil)
	}
	data, err := methods[name](ctx, raw)
	if err != nil {
		e := rpc.AsError(err)
		return cliFail(stderr, e.Message, e.Fields["exit_code"])
	}
	return cliPrint(stdout, success{Success: true, Data: data}, 0)
}

// The envelopes, with the seed's key order.
type success struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

type failure struct {
	Success  bool   `json:"success"`
	Error    string `json:"error"`
	ExitCode any    `json:"exit_code,omitempty"`
}

// cliParams parses flags wherever they stand among the positional
// arguments ("build . --tag x" as well as "build --tag x ."), as the
// seed's argparse did.
func cliParams(name string, cmd cliCommand, args []string, stderr io.Writer) (map[string]any, error) {
	params := map[string]any{}
	fs := flag.NewFlagSet("podman-worker "+name, flag.ContinueOnError)
	// Callers parse stderr as the error envelope: usage text goes there
	// only when asked for with -h.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on every error
	if cmd.flags != nil {
		cmd.flags(fs, params)
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fs.PrintDefaults()
			}
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != len(cmd.positional) {
		return nil, fmt.Errorf("%s takes %d argument(s) (%s), got %d", name, len(cmd.positional), strings.Join(cmd.positional, ", "), len(positional))
	}
	for i, p := range cmd.positional {
		params[p] = positional[i]
	}
	return params, nil
}

func cliFail(stderr io.Writer, msg string, exitCode any) int {
	return cliPrint(stderr, failure{Error: msg, ExitCode: exitCode}, 1)
}

func cliPrint(w io.Writer, v any, code int) int {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(failure{Error: err.Error()})
		code = 1
	}
	fmt.Fprintln(w, string(b))
	return code
}

// Flag helpers: each sets params[param] only when the flag is given, so
// the method's own defaults apply otherwise.

func str(fs *flag.FlagSet, p map[string]any, name, param, usage string, short ...string) {
	for _, n := range append([]string{name}, short...) {
		fs.Func(n, usage, func(v string) error { p[param] = v; return nil })
	}
}

func num(fs *flag.FlagSet, p map[string]any, name, param, usage string) {
	fs.Func(name, usage, func(v string) error {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		p[param] = json.Number(v)
		return nil
	})
}

func list(fs *flag.FlagSet, p map[string]any, name, param, usage string, short ...string) {
	for _, n := range append([]string{name}, short...) {
		fs.Func(n, usage, func(v string) error {
			l, _ := p[param].([]string)
			p[param] = append(l, v)
			return nil
		})
	}
}

func boolean(fs *flag.FlagSet, p map[string]any, name, param, usage string, short ...string) {
	for _, n := range append([]string{name}, short...) {
		fs.BoolFunc(n, usage, func(v string) error { p[param] = v != "false"; return nil })
	}
}

// negated is a flag that sets a param to false: --no-auto-remove.
func negated(fs *flag.FlagSet, p map[string]any, name, param, usage string) {
	fs.BoolFunc(name, usage, func(v string) error { p[param] = v == "false"; return nil })
}
