package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

// The command line's parsing is package argparse's (its tests hold it to
// the seed's argparse); these tests hold what the CLI does with a parsed
// line: envelopes, exit statuses and the worker flags before the command.

// TestCLIEnvelopes pins the bytes of each outcome of a call, keys in the
// seed's order: success on stdout, failure on stderr with the exit code
// and output of a function that exited non-zero.
func TestCLIEnvelopes(t *testing.T) {
	failed := fault.Errorf(fault.KindExecutionFailed, "Container execution failed").
		With("exit_code", 127).With("stdout", "").With("stderr", "/bin/sh: nosuchcmd: not found\n").With("container_id", "abc")
	for _, row := range []struct {
		name           string
		args           []string
		data           any
		err            error
		stdout, stderr string
		code           int
	}{
		{"success", []string{"run", "img"}, map[string]any{"exit_code": 0}, nil,
			`{"success":true,"data":{"exit_code":0}}` + "\n", "", 0},
		{"exists", []string{"exists", "img"}, true, nil,
			`{"success":true,"data":true}` + "\n", "", 0},
		{"exists answers false: a failure, as the seed's", []string{"exists", "img"}, false, nil,
			"", `{"success":false,"error":"Image does not exist"}` + "\n", 1},
		{"the function exited non-zero", []string{"run", "img", "-c", "nosuchcmd"}, nil, failed,
			"", `{"success":false,"error":"Container execution failed","exit_code":127,"stdout":"","stderr":"/bin/sh: nosuchcmd: not found\n"}` + "\n", 1},
		{"timeout", []string{"run", "img", "--name", "slow"}, nil, fault.Errorf(fault.KindTimeout, "Container 'slow' exceeded timeout of 1s and was killed").With("container_id", "abc"),
			"", `{"success":false,"error":"Container 'slow' exceeded timeout of 1s and was killed"}` + "\n", 1},
		{"a plain error", []string{"ping"}, nil, errors.New("boom"),
			"", `{"success":false,"error":"internal error: boom"}` + "\n", 1},
		{"cancelled", []string{"ping"}, nil, context.Canceled,
			"", `{"success":false,"error":"Request cancelled"}` + "\n", 1},
		{"a value JSON cannot carry, refused before any call", []string{"run", "img", "--cpus", "inf"}, "never called", nil,
			"", `{"success":false,"error":"Invalid params: \"cpus\": \"inf\" is not a finite number"}` + "\n", 1},
	} {
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), func(context.Context, string, json.RawMessage) (any, error) {
			return row.data, row.err
		}, row.args, nil, &stdout, &stderr)
		if stdout.String() != row.stdout || stderr.String() != row.stderr || code != row.code {
			t.Errorf("%s: argv %q: exit %d (want %d)\nstdout: %s want: %s\nstderr: %s want: %s", row.name, row.args, code, row.code, stdout.String(), row.stdout, stderr.String(), row.stderr)
		}
	}
}

// TestExpandSocketPrefix: the seed's argparse took any prefix of
// --socket; only the worker flags before the command are touched.
func TestExpandSocketPrefix(t *testing.T) {
	for _, row := range []struct{ in, want []string }{
		{[]string{"--sock", "/s", "ping"}, []string{"--socket", "/s", "ping"}},
		{[]string{"--s=/s", "ping"}, []string{"--socket=/s", "ping"}},
		{[]string{"--socke", "/s"}, []string{"--socket", "/s"}},
		{[]string{"--socket", "/s", "ping"}, []string{"--socket", "/s", "ping"}},
		{[]string{"--debug", "--so", "/s", "run", "img", "--so", "x"}, []string{"--debug", "--socket", "/s", "run", "img", "--so", "x"}},
		{[]string{"-sock", "/s", "ping"}, []string{"-sock", "/s", "ping"}}, // argparse had no single-dash form
		{[]string{"--", "--sock"}, []string{"--", "--sock"}},
		{[]string{"--sockets", "/s"}, []string{"--sockets", "/s"}},
		{[]string{"--", "/s"}, []string{"--", "/s"}},
	} {
		if got := expandSocketPrefix(row.in); !reflect.DeepEqual(got, row.want) {
			t.Errorf("expandSocketPrefix(%q) = %q, want %q", row.in, got, row.want)
		}
	}
}

// TestCLIRelativeContext: a relative build context is the caller's working
// directory's, as podman build takes it; the protocol's relative contexts
// are relative to the first build root instead.
func TestCLIRelativeContext(t *testing.T) {
	cwd, _ := os.Getwd()
	var got string
	code := runCLI(context.Background(), func(_ context.Context, method string, params json.RawMessage) (any, error) {
		var p struct{ Context string }
		_ = json.Unmarshal(params, &p)
		got = p.Context
		return nil, nil
	}, []string{"build", "sub", "-t", "a"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if want := filepath.Join(cwd, "sub"); got != want || code != 0 {
		t.Errorf("build sub: context %q (exit %d), want %q", got, code, want)
	}
}
