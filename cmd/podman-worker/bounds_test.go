package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxPeakRSS is the most resident memory the worker may reach in
// TestMemoryIsBoundedWhateverTheClientSends, in KiB. What it holds by
// design: the queue (--max-queued-bytes, 64 MiB by default), a line being
// read and joined (2 x 16 MiB), the lines answered Busy until the
// collector frees them (it lets the heap grow to twice what is live), and
// the process itself (~40 MiB). Measured: 207-239 MiB; the rest is margin
// for the collector's pacing on a loaded machine. Without the bounds, the
// 120 lines alone are 1.9 GiB.
const maxPeakRSS = 384 << 10

// A client that sends far more than the worker can take: 120 lines of
// 16 MiB queued behind a call that holds the only worker slot, then a
// 15 MiB batch line of tiny calls. The lines past --max-queued-bytes are
// answered Busy as they are read, the batch is refused whole, a control
// call is still answered, memory stays bounded, and once the slot is free
// the queued calls run and a ping answers.
func TestMemoryIsBoundedWhateverTheClientSends(t *testing.T) {
	w := startBinary(t, workerBin, "--socket", service.URI, "--max-workers", "1")
	if line, _ := w.next(time.Minute); !strings.Contains(line, "worker.ready") {
		t.Fatalf("first line %q", line)
	}
	replies := map[string]map[string]any{} // by id, as JSON text
	// expect reads lines until n of them have come, and keeps them by id.
	expect := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			line, ok := w.next(2 * time.Minute)
			if !ok {
				t.Fatalf("the worker closed its output with %d of %d replies to come", n-i, n)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("not a JSON object: %.300s", line)
			}
			id, _ := json.Marshal(r["id"])
			if _, dup := replies[string(id)]; dup && string(id) != "null" {
				t.Fatalf("id %s answered twice", id)
			}
			replies[string(id)] = r
		}
	}
	errorType := func(id string) string {
		e, _ := replies[id]["error"].(map[string]any)
		data, _ := e["data"].(map[string]any)
		typ, _ := data["type"].(string)
		return typ
	}

	// The only slot: a run that sleeps until it is cancelled.
	w.send(`{"jsonrpc":"2.0","id":"slow","method":"run","params":` + runParams(`"timeout":600`, "sleep", "600") + `}`)

	// (a) 120 lines just under --max-line-bytes (16 MiB), alternately
	// ping and run, each with a pad its method will refuse once it runs.
	// A race-built worker reads a 16 MiB line in seconds, not
	// milliseconds: it gets 12, enough for what it checks (liveness).
	const lineBytes = 16<<20 - 100
	lines := 120
	if raceEnabled {
		lines = 12
	}
	pad := bytes.Repeat([]byte("x"), lineBytes)
	for i := 0; i < lines; i++ {
		method := []string{"ping", "run"}[i%2]
		head := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{"pad":"`, i, method)
		tail := `"}}` + "\n"
		for _, part := range [][]byte{[]byte(head), pad[:lineBytes-len(head)-len(tail)+1], []byte(tail)} {
			if _, err := w.stdin.Write(part); err != nil {
				t.Fatalf("writing line %d: %v", i, err)
			}
		}
	}
	const queued = 64 << 20 / lineBytes // what --max-queued-bytes lets wait
	expect(lines - queued)
	for i := queued; i < lines; i++ {
		if typ := errorType(fmt.Sprint(i)); typ != "Busy" {
			t.Fatalf("16 MiB call %d past --max-queued-bytes answered %v, want Busy", i, replies[fmt.Sprint(i)])
		}
	}

	// (b) A 15 MiB batch line of tiny calls: far more entries than the
	// worker can ever hold, refused whole with one error.
	var batch bytes.Buffer
	batch.WriteByte('[')
	n := 0
	for ; batch.Len() < 15<<20; n++ {
		if n > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"jsonrpc":"2.0","id":"b%d","method":"ping"}`, n)
	}
	batch.WriteString("]\n")
	if _, err := io.Copy(w.stdin, &batch); err != nil {
		t.Fatal(err)
	}
	expect(1)
	if typ := errorType("null"); typ != "InvalidRequest" || !strings.Contains(fmt.Sprint(replies["null"]), fmt.Sprintf("a batch of %d entries", n)) {
		t.Fatalf("a batch of %d tiny calls answered %v, want one InvalidRequest naming its size", n, replies["null"])
	}

	// (c) A control call is answered while the slot is held and the queue
	// is full; then, with the slot freed, the queued calls run (and refuse
	// their pad) and a ping answers.
	w.send(`{"jsonrpc":"2.0","id":"health","method":"health"}`)
	expect(1)
	if replies[`"health"`]["result"] == nil {
		t.Fatalf("health with every slot busy and the queue full: %v", replies[`"health"`])
	}
	w.send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"slow"}}`)
	expect(1 + queued)
	if typ := errorType(`"slow"`); typ != "Cancelled" {
		t.Errorf("the cancelled run answered %v", replies[`"slow"`])
	}
	for i := 0; i < queued; i++ {
		if typ := errorType(fmt.Sprint(i)); typ != "BadRequest" {
			t.Errorf("queued call %d answered %v, want its pad refused (BadRequest)", i, replies[fmt.Sprint(i)])
		}
	}
	if r, _ := w.call(`"ping"`, "ping", ""); r["result"] != "Pong" {
		t.Errorf("ping after the flood: %v", r)
	}

	rss := peakRSS(t, w.cmd.Process.Pid)
	if raceEnabled {
		// The race detector's shadow memory changes the figure.
		t.Logf("peak RSS %d KiB, not checked under -race, after %d lines of 16 MiB and a batch of %d calls", rss, lines, n)
		return
	}
	t.Logf("peak RSS %d KiB (bound %d KiB) after %d lines of 16 MiB and a batch of %d calls", rss, maxPeakRSS, lines, n)
	if rss > maxPeakRSS {
		t.Errorf("peak RSS %d KiB, want at most %d KiB: the queue's bounds do not hold memory", rss, maxPeakRSS)
	}
}

// The control plane never waits: with every worker slot running a
// container and the queue full, health answers within 100 ms (p99 of 400
// calls, so a few slow ones on a loaded machine do not decide it),
// metrics says so, a call past the queue is answered Busy at once, and a
// cancel takes effect within a second, for a running run and a queued one.
func TestControlPlaneWithEverySlotBusy(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI, "--max-workers", "10", "--max-queued", "5")
	for i := range 15 { // 10 run, 5 wait
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":"run%d","method":"run","params":%s}`, i, runParams(`"timeout":120`, "sleep", "100")))
	}
	if list := waitForContainers(t, svc.URI, 10, 2*time.Minute); len(list) != 10 {
		t.Fatalf("want 10 containers running, the service holds %v", names(list))
	}
	replies := map[string]string{}
	next := func(id string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		for {
			if line, ok := replies[id]; ok {
				return line, time.Since(start)
			}
			line, ok := w.next(time.Minute)
			if !ok {
				t.Fatal("output closed")
			}
			var r struct {
				ID string `json:"id"`
			}
			json.Unmarshal([]byte(line), &r)
			replies[r.ID] = line
		}
	}

	w.send(`{"jsonrpc":"2.0","id":"over","method":"ping"}`)
	if line, _ := next("over"); !strings.Contains(line, `"type":"Busy"`) {
		t.Errorf("a call past a full queue: %s; want Busy at once", line)
	}
	const samples = 400
	var took []time.Duration
	for i := range samples {
		id := fmt.Sprintf("h%d", i)
		start := time.Now()
		w.send(`{"jsonrpc":"2.0","id":"` + id + `","method":"health"}`)
		line, _ := next(id)
		took = append(took, time.Since(start))
		if !strings.Contains(line, `"status":"ok"`) {
			t.Fatalf("health with every slot busy: %s", line)
		}
	}
	slices.Sort(took)
	if p99 := took[len(took)*99/100]; p99 > 100*time.Millisecond {
		t.Errorf("health with 10 runs in flight and a full queue: p99 %v over %d calls (max %v); want at most 100 ms", p99, samples, took[len(took)-1])
	}
	t.Logf("health p50 %v p99 %v", took[len(took)/2], took[len(took)*99/100])
	if line, _ := next(func() string { w.send(`{"jsonrpc":"2.0","id":"m","method":"metrics"}`); return "m" }()); !strings.Contains(line, `"workers":{"max":10,"busy":10,"queued":5}`) {
		t.Errorf("metrics: %s", line)
	}
	for _, id := range []string{"run0", "run12"} { // running, queued
		start := time.Now()
		w.send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"` + id + `"}}`)
		line, took := next(id)
		if !strings.Contains(line, `"code":-32800`) || took > time.Second {
			t.Errorf("cancel of %s: %s after %v; want -32800 within 1 s", id, line, time.Since(start))
		}
	}
}

// Templates are the caller's code: the ones that killed the worker (out of
// memory) or would stall it now get BadRequest, through info, inspect and
// the CLI, while runs in flight go on and are answered.
func TestHostileTemplatesNeitherCrashNorStall(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	for i := range 3 {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":"run%d","method":"run","params":%s}`, i, runParams("", "sh", "-c", "sleep 2; echo done")))
	}
	var seen []string // lines that came before the replies awaited
	formats := []string{
		`{{pad "x" 60000000000 0}}`,
		`{{pad "x" .Host.MemTotal 0}}`,
		`{{range .Host.MemTotal}}{{end}}`,
		`{{printf "%0999999999d" 1}}`,
		`{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`,
	}
	for i, f := range formats {
		q, _ := json.Marshal(f)
		r, before := w.call(fmt.Sprintf(`"info%d"`, i), "info", `{"format":`+string(q)+`}`)
		seen = append(seen, before...)
		if _, data := errorData(t, r); data["type"] != "BadRequest" || data["field"] != "format" {
			t.Errorf("info with format %s: %v; want BadRequest naming format", f, r)
		}
	}
	r, before := w.call(`"inspect"`, "inspect", `{"image":"localhost/busybox:latest","format":"{{pad \"x\" 60000000000 0}}"}`)
	seen = append(seen, before...)
	if _, data := errorData(t, r); data["type"] != "BadRequest" {
		t.Errorf("inspect with a huge pad: %v", r)
	}
	r, before = w.call(`"ping"`, "ping", "")
	seen = append(seen, before...)
	if r["result"] != "Pong" {
		t.Errorf("ping after the templates: %v", r)
	}
	for i := range 3 {
		id := fmt.Sprintf("run%d", i)
		for {
			line := ""
			for _, l := range seen {
				if strings.Contains(l, `"id":"`+id+`"`) {
					line = l
				}
			}
			if line == "" {
				l, ok := w.next(time.Minute)
				if !ok {
					t.Fatalf("output closed before %s was answered", id)
				}
				seen = append(seen, l)
				continue
			}
			if !strings.Contains(line, `"stdout":"done\n"`) {
				t.Errorf("%s, in flight during the templates: %s", id, line)
			}
			break
		}
	}
	out, err := exec.Command(workerBin, "--socket", service.URI, "info", "-f", `{{pad "x" 60000000000 0}}`).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), `"success":false`) || !strings.Contains(string(out), `format`) {
		t.Errorf("CLI info -f with a huge pad: exit %d, %s; want 1 and the failure envelope", code, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
