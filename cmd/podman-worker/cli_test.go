package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podman-worker/podman-worker/podman/podmantest"
	"golang.org/x/tools/txtar"
)

// TestCLIGolden runs every command of the seed's per-call CLI through the
// built binary, one process per command as the backend does today, and
// compares exit codes, stdout and stderr (normalized) with
// testdata/golden-cli/*.txtar. Section "commands" holds one command line
// per line (single quotes group words); -update rewrites section "out". An
// "args:" line in the comment holds flags given to every command
// ($TESTDATA is replaced).
func TestCLIGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "testdata", "golden-cli", "*.txtar"))
	if len(files) == 0 {
		t.Fatal("no files under testdata/golden-cli")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ar := txtar.Parse(data)
			svc := privateService(t)
			vars := strings.NewReplacer("$BUSYBOX", podmantest.BusyboxImage, "$TESTDATA", filepath.Join(repoRoot, "testdata"))
			norm := newNormalizer(parseSettings(ar.Comment), svc.URI)
			var out strings.Builder
			commands, _ := section(ar, "commands")
			for _, line := range strings.Split(string(commands), "\n") {
				if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
					continue
				}
				args := append([]string{"--socket", svc.URI}, strings.Fields(vars.Replace(parseSettings(ar.Comment)["args"]))...)
				cmd := exec.Command(workerBin, append(args, shellWords(vars.Replace(line))...)...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				cmd.Run()
				fmt.Fprintf(&out, "$ %s\nexit %d\n", line, cmd.ProcessState.ExitCode())
				for _, s := range []struct{ name, text string }{{"stdout", stdout.String()}, {"stderr", stderr.String()}} {
					for _, l := range strings.Split(strings.TrimSpace(s.text), "\n") {
						if l != "" {
							n, _ := norm.line(t, l)
							fmt.Fprintf(&out, "%s: %s\n", s.name, n)
						}
					}
				}
			}
			if *update {
				setSection(ar, "out", []byte(out.String()))
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want, _ := section(ar, "out"); out.String() != string(want) {
				t.Errorf("%s differs (-update rewrites it after review)\n%s", filepath.Base(file), diffLines(string(want), out.String()))
			}
		})
	}
}

// shellWords splits a command line on spaces, keeping 'single-quoted' words whole.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
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
