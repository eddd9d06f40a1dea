package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/argparse"
	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/rpc"
)

// The drop-in replacement for the per-call CLI (podman_client.py): the same
// commands, options and outcomes, one call per process. Its callers were
// written against Python's argparse, so the command line is read the way
// argparse read it, refusals included (package argparse, whose Seed holds
// the commands and options), with argparse's usage and error texts and
// exit status 2. Each command then calls the worker method of
// the same name, so both modes share one implementation, and prints the
// seed's envelope: {"success": true, "data": ...} on stdout, or
// {"success": false, "error": ..., "exit_code"?, "stdout"?, "stderr"?} on
// stderr with exit status 1.
//
// runCLI runs one command of the per-call CLI through call and prints its
// outcome. The exit status is 0 on success (and for --help), 1 when the
// call failed, 2 when the command line was refused, as argparse did.
func runCLI(ctx context.Context, call func(ctx context.Context, method string, params json.RawMessage) (any, error), args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, params, err := argparse.Seed.Parse(args)
	if err != nil {
		return cliParseOutcome(err, stdout, stderr)
	}
	if path, ok := params["input_file"].(string); ok {
		// The function's input: a file's bytes, or this command's own
		// stdin for "-", sent exact (base64) and bounded by the worker.
		delete(params, "input_file")
		data, err := readInput(path, stdin)
		if err != nil {
			return cliPrint(stderr, failure{Error: err.Error()}, 1)
		}
		params["input"], params["input_encoding"] = base64.StdEncoding.EncodeToString(data), "base64"
	}
	if c, ok := params["context"].(string); ok && cmd.Name == "build" && c != "" && !filepath.IsAbs(c) {
		// The CLI's caller means its own working directory, as podman
		// build does; the protocol takes relative contexts as relative to
		// the first build root instead.
		if abs, err := filepath.Abs(c); err == nil {
			params["context"] = abs
		}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return cliPrint(stderr, failure{Error: err.Error()}, 1)
	}
	data, err := call(ctx, cmd.Name, raw)
	if err != nil {
		e := fault.As(err)
		// A function that exited non-zero: its exit code and output are
		// what the caller needs to see why.
		return cliPrint(stderr, failure{Error: e.Message, ExitCode: e.Fields["exit_code"], Stdout: e.Fields["stdout"], Stderr: e.Fields["stderr"]}, 1)
	}
	if exists, ok := data.(bool); ok && cmd.Name == "exists" && !exists {
		// Callers test "success": the seed answered a missing image as a
		// failure, where the JSON-RPC method answers false.
		return cliPrint(stderr, failure{Error: "Image does not exist"}, 1)
	}
	return cliPrint(stdout, success{Success: true, Data: data}, 0)
}

// maxCLIInput bounds what the CLI reads for --input-file; the worker's own
// --max-input-bytes then decides.
const maxCLIInput = 1 << 30

// readInput reads --input-file's bytes.
func readInput(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("--input-file -: this command has no stdin")
		}
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--input-file: %v", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxCLIInput+1))
	if err != nil {
		return nil, fmt.Errorf("--input-file: %v", err)
	}
	if len(data) > maxCLIInput {
		return nil, fmt.Errorf("--input-file: more than 1 GiB")
	}
	return data, nil
}

// cliRefusal answers a command line that needs no call (help, a usage
// error, a value no method takes) before the worker connects to Podman,
// as the seed's argparse did: done is false when the line is a call.
func cliRefusal(args []string, stdout, stderr io.Writer) (code int, done bool) {
	if _, _, err := argparse.Seed.Parse(args); err != nil {
		return cliParseOutcome(err, stdout, stderr), true
	}
	return 0, false
}

// cliParseOutcome prints what argparse.Seed.Parse refused and returns the exit status.
func cliParseOutcome(err error, stdout, stderr io.Writer) int {
	var help *argparse.HelpRequest
	var usage *argparse.UsageError
	switch {
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.Text) // argparse prints help on stdout
		return 0
	case errors.As(err, &usage):
		fmt.Fprint(stderr, usage.Error())
		return 2
	}
	return cliPrint(stderr, failure{Error: err.Error()}, 1)
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
	Stdout   any    `json:"stdout,omitempty"`
	Stderr   any    `json:"stderr,omitempty"`
}

func cliPrint(w io.Writer, v any, code int) int {
	b, err := rpc.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(failure{Error: err.Error()})
		code = 1
	}
	fmt.Fprintln(w, string(b))
	return code
}

// expandSocketPrefix turns the seed's abbreviations of its one global
// option, --sock and the like (argparse took any prefix of --socket), into
// --socket for the worker's flag parser, which takes whole names only. It
// looks at the worker flags alone: those before the command.
func expandSocketPrefix(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" || argparse.Seed.Command(a) != nil {
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		if p := strings.TrimPrefix(name, "--"); p != name && p != "" && p != "socket" && strings.HasPrefix("socket", p) {
			out[i] = "--socket"
			if hasValue {
				out[i] += "=" + value
			}
		}
	}
	return out
}
