package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run's input arrives byte for byte: 6 MiB of random bytes (the default
// --max-input-bytes), sent base64, hash the same inside the container, cold
// and prewarmed; and through the per-call CLI's --input-file, from a file
// and from its own stdin.
func TestInputArrivesByteExact(t *testing.T) {
	data := make([]byte, 6<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	w := startWorker(t, "--socket", service.URI, "--max-line-bytes", "16m")
	params := runParams(fmt.Sprintf(`"input":%q,"input_encoding":"base64","memory":"64m","timeout":30`, base64.StdEncoding.EncodeToString(data)), "sha256sum")
	r, _ := w.call(`"cold"`, "run", params)
	if got := fmt.Sprint(result(t, r)["stdout"]); !strings.HasPrefix(got, want) {
		t.Errorf("sha256 of 6 MiB of input seen inside: %q, want %s", got, want)
	}
	result(t, mustCall(w, `"warm"`, "prewarm", runParams(`"memory":"64m","timeout":30,"count":1`, "sha256sum")))
	r, _ = w.call(`"prewarmed"`, "run", params)
	if res := result(t, r); !strings.HasPrefix(fmt.Sprint(res["stdout"]), want) || res["start"] != "prewarmed" {
		t.Errorf("the same input to a prewarmed container: stdout %q, start %v", res["stdout"], res["start"])
	}
	mustCall(w, `"drain"`, "prewarm", runParams(`"memory":"64m","timeout":30,"count":0`, "sha256sum"))

	// The CLI: a file, then its own stdin.
	small := []byte("line one\n\x00\x10\x11\xff end")
	file := filepath.Join(t.TempDir(), "request.bin")
	os.WriteFile(file, small, 0o644)
	sum = sha256.Sum256(small)
	for _, tt := range []struct {
		arg   string
		stdin []byte
	}{{file, nil}, {"-", small}} {
		cmd := exec.Command(workerBin, "--socket", service.URI, "run", "localhost/busybox:latest", "-c", "sha256sum", "--input-file", tt.arg)
		cmd.Stdin = bytes.NewReader(tt.stdin)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), hex.EncodeToString(sum[:])) {
			t.Errorf("CLI run --input-file %s: %v %s", tt.arg, err, out)
		}
	}
}

// A function that never reads its stdin, given 6 MiB of input, runs to its
// timeout and is answered then, or when cancelled, without the worker
// blocking on the write or holding more than the input and its pipe buffers;
// nothing is left behind.
func TestInputNobodyReads(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI)
	input := base64.StdEncoding.EncodeToString(make([]byte, 6<<20))
	before := peakRSS(t, w.cmd.Process.Pid)
	begun := time.Now()
	r, _ := w.call(`"timeout"`, "run", runParams(fmt.Sprintf(`"input":%q,"input_encoding":"base64","timeout":2`, input), "sleep", "10"))
	if _, data := errorData(t, r); data["type"] != "Timeout" {
		t.Errorf("6 MiB to sleep 10 with timeout 2: %v", r)
	}
	if took := time.Since(begun); took > 8*time.Second {
		t.Errorf("the timeout of 2 s was answered after %s", took)
	}
	w.send(`{"jsonrpc":"2.0","id":"cancel","method":"run","params":` + runParams(fmt.Sprintf(`"input":%q,"input_encoding":"base64","timeout":30`, input), "sleep", "10") + `}`)
	// Cancelled once its container runs, with the input being written.
	if !eventually(time.Minute, func() bool { return runningOn(t, svc.URI, "") == 1 }) {
		t.Fatal("the run's container never ran")
	}
	w.send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"cancel"}}`)
	line, ok := w.next(10 * time.Second)
	if !ok || !strings.Contains(line, `"id":"cancel"`) || !strings.Contains(line, "-32800") {
		t.Errorf("the cancelled run answered %q", line)
	}
	if r, _ := w.call(`"ping"`, "ping", ""); r["result"] != "Pong" {
		t.Errorf("ping after: %v", r)
	}
	after := peakRSS(t, w.cmd.Process.Pid)
	t.Logf("worker peak RSS %d KiB before, %d KiB after two runs with 6 MiB of unread input", before, after)
	if !raceEnabled && after-before > 96<<10 {
		t.Errorf("the worker's peak RSS grew by %d KiB for two runs with 6 MiB of input nobody read", after-before)
	}
	exitsLeavingNothing(t, w, svc.URI, "")
	for _, c := range onService(t, svc.URI) {
		t.Errorf("container left behind: %v", c.Names)
	}
}
