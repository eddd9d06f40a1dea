package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestCLIGolden runs command lines of the seed's per-call CLI through the
// built binary, one process per line as the backend does today, and
// compares exit codes, stdout and stderr (normalized) with
// testdata/golden-cli/*.txtar. Section "commands" holds one command line
// per line, after the worker's --socket: words split at spaces, and
// single or double quotes keep a word whole, an empty one too. The setting
// "dir: PATH" (under testdata) is the processes' working directory, and
// "args: FLAGS" holds worker flags given to every command ($TESTDATA is
// replaced), and "shape: COMMAND ..." compares the data of those commands by its shape,
// where its values are machine-specific: an object by its sorted keys, a
// number written as a string (an image's size) as <SIZE>.
// Output lines that are JSON are normalized as in TestGolden; others
// (argparse's usage and help) are kept as they are. -update rewrites
// section "out".
func TestCLIGolden(t *testing.T) {
	runGoldenSuite(t, goldenSuite{test: "TestCLIGolden", dir: "golden-cli", in: "commands", out: "out", play: playCommands})
}

// playCommands runs a file's command lines, one process each, and answers
// their exit codes and output.
func playCommands(t *testing.T, settings map[string]string, in []byte) string {
	svc := privateService(t)
	vars := goldenVars()
	norm := newNormalizer(settings, svc.URI)
	shaped := map[string]bool{}
	for _, c := range strings.Fields(settings["shape"]) {
		shaped[c] = true
	}
	var out strings.Builder
	for _, line := range strings.Split(string(in), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args := append([]string{"--socket", svc.URI}, strings.Fields(vars.Replace(settings["args"]))...)
		cmd := exec.Command(workerBin, append(args, shellWords(vars.Replace(line))...)...)
		if dir := settings["dir"]; dir != "" {
			cmd.Dir = filepath.Join(repoRoot, "testdata", dir)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		fmt.Fprintf(&out, "$ %s\nexit %d\n", line, cmd.ProcessState.ExitCode())
		for _, s := range []struct{ name, text string }{{"stdout", stdout.String()}, {"stderr", stderr.String()}} {
			for _, l := range strings.Split(strings.TrimSpace(s.text), "\n") {
				if l == "" {
					continue
				}
				if json.Valid([]byte(l)) {
					if shaped[shellWords(line)[0]] {
						l = dataShape(t, l)
					}
					l, _ = norm.line(t, l)
				}
				fmt.Fprintf(&out, "%s: %s\n", s.name, l)
			}
		}
	}
	return out.String()
}

// dataShape replaces the data of an envelope with its shape: an object by
// its sorted keys, a string of digits by <SIZE>.
func dataShape(t *testing.T, line string) string {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal([]byte(line), &env); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	switch data := env["data"].(type) {
	case map[string]any:
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		env["data"] = keys
	case string:
		if strings.Trim(data, "0123456789") == "" && data != "" {
			env["data"] = "<SIZE>"
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellWords splits a command line on spaces, keeping 'single-quoted' and
// "double-quoted" words whole; there are no escapes.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune // the quote open, or 0
	inWord := false
	for _, r := range s {
		switch {
		case quote == 0 && (r == '\'' || r == '"'):
			quote, inWord = r, true
		case r == quote:
			quote = 0
		case r == ' ' && quote == 0:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestCLISocketPrefix: the seed took any prefix of its --socket option
// before the command, and its callers may have used one.
func TestCLISocketPrefix(t *testing.T) {
	for _, args := range [][]string{
		{"--sock", service.URI, "ping"},
		{"--s=" + service.URI, "ping"},
		{"--socket=" + service.URI, "ping"},
	} {
		cmd := exec.Command(workerBin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if want := `{"success":true,"data":"Pong"}` + "\n"; err != nil || stdout.String() != want {
			t.Errorf("podman-worker %q: %v\nstdout: %s\nwant: %s\nstderr: %s", args, err, stdout.String(), want, stderr.String())
		}
	}
}
