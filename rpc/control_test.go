package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/internal/testbuf"
)

// session is a Server serving on pipes, for tests that interleave input
// and output.
type session struct {
	t    *testing.T
	s    *Server
	w    io.WriteCloser
	out  *testbuf.Buffer
	done chan error
}

func startSession(t *testing.T, opts Options, methods map[string]Method) *session {
	t.Helper()
	in, w := io.Pipe()
	ss := &session{t: t, s: NewServer(methods, opts), w: w, out: &testbuf.Buffer{}, done: make(chan error, 1)}
	go func() { ss.done <- ss.s.Serve(context.Background(), in, ss.out) }()
	t.Cleanup(func() { w.Close() })
	return ss
}

func (ss *session) send(lines ...string) {
	for _, l := range lines {
		fmt.Fprintln(ss.w, l)
	}
}

// reply waits for the line that answers id and returns it.
func (ss *session) reply(id string) string {
	ss.t.Helper()
	var found string
	waitFor(ss.t, func() bool {
		for _, l := range ss.out.Lines() {
			if strings.HasPrefix(l, `{"jsonrpc":"2.0","id":`+id+`,`) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

// end closes the input and waits for Serve.
func (ss *session) end() []string {
	ss.t.Helper()
	ss.w.Close()
	if err := <-ss.done; err != nil {
		ss.t.Fatalf("Serve: %v", err)
	}
	return ss.out.Lines()
}

// blockingMethods: "block" holds its worker until release is closed (or
// it is cancelled); "get" answers at once; "health" is the same, for use
// as a control method.
func blockingMethods(release chan struct{}) map[string]Method {
	return map[string]Method{
		"block": func(ctx context.Context, _ json.RawMessage) (any, error) {
			select {
			case <-release:
				return "released", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		"get":    func(context.Context, json.RawMessage) (any, error) { return "got", nil },
		"health": func(context.Context, json.RawMessage) (any, error) { return "ok", nil },
	}
}

// With every worker slot busy and the queue full, the worker still reads:
// a further call is answered Busy at once, and control calls and
// cancellations are served at once.
func TestFullQueueAnswersBusyAndControlStillServes(t *testing.T) {
	release := make(chan struct{})
	ss := startSession(t, Options{Logger: zerolog.Nop(), MaxWorkers: 1, MaxQueued: 2, Control: []string{"health"}}, blockingMethods(release))
	ss.send(
		`{"jsonrpc":"2.0","id":1,"method":"block"}`, // runs
		`{"jsonrpc":"2.0","id":2,"method":"block"}`, // waits
		`{"jsonrpc":"2.0","id":3,"method":"get"}`,   // waits: the queue is full
	)
	waitFor(t, func() bool { return ss.s.Stats().Queued == 2 })

	tests := []struct{ name, send, id, want string }{
		{"a call past the queue is refused with Busy, saying what to do", `{"jsonrpc":"2.0","id":4,"method":"get"}`, "4",
			`{"jsonrpc":"2.0","id":4,"error":{"code":-32029,"message":"the worker is busy: 2 calls already wait for a worker slot (--max-queued); retry later, or raise --max-queued","data":{"limit":"max_queued","status":429,"type":"Busy"}}}`},
		{"a control method runs without a slot", `{"jsonrpc":"2.0","id":5,"method":"health"}`, "5",
			`{"jsonrpc":"2.0","id":5,"result":"ok"}`},
		{"a cancellation sent as a call is answered at once", `{"jsonrpc":"2.0","id":6,"method":"$/cancelRequest","params":{"id":3}}`, "6",
			`{"jsonrpc":"2.0","id":6,"result":null}`},
		{"and the queued call it names answers -32800 at once", "", "3",
			`{"jsonrpc":"2.0","id":3,"error":{"code":-32800,"message":"Request cancelled","data":{"status":499,"type":"Cancelled"}}}`},
		{"which leaves room for one more call", `{"jsonrpc":"2.0","id":7,"method":"get"}`, "", ""},
		{"but no more", `{"jsonrpc":"2.0","id":8,"method":"get"}`, "8",
			`{"jsonrpc":"2.0","id":8,"error":{"code":-32029,"message":"the worker is busy: 2 calls already wait for a worker slot (--max-queued); retry later, or raise --max-queued","data":{"limit":"max_queued","status":429,"type":"Busy"}}}`},
	}
	for _, tt := range tests {
		if tt.send != "" {
			ss.send(tt.send)
		}
		if tt.id == "" {
			waitFor(t, func() bool { return ss.s.Stats().Queued == 2 })
			continue
		}
		if got := ss.reply(tt.id); got != tt.want {
			t.Errorf("%s: sent %s\n got %s\nwant %s", tt.name, tt.send, got, tt.want)
		}
	}
	// A flood past the full queue is answered as it is read.
	for i := 100; i < 200; i++ {
		ss.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"get"}`, i))
	}
	ss.reply("199")

	close(release)
	got := summaries(t, ss.end())
	want := []string{"1=\"released\"", "100!-32029", "2=\"released\"", "3!-32800", "4!-32029", "5=\"ok\"", "6=null", "7=\"got\"", "8!-32029"}
	if len(got) != 108 {
		t.Errorf("108 calls, %d replies", len(got))
	}
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("no reply %s among %q", w, got[:min(len(got), 12)])
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// In a batch, the entries past the queue's bounds are answered Busy one
// by one in the batch's reply; the others run.
func TestBatchEntriesPastTheQueueAreBusy(t *testing.T) {
	release := make(chan struct{})
	ss := startSession(t, Options{Logger: zerolog.Nop(), MaxWorkers: 1, MaxQueued: 2}, blockingMethods(release))
	ss.send(`{"jsonrpc":"2.0","id":1,"method":"block"}`)
	waitFor(t, func() bool { return ss.s.Stats().Busy == 1 })
	// One worker and two queue places are taken by the batch's first
	// three entries... except that the worker is busy: two wait, one is Busy.
	ss.send(`[{"jsonrpc":"2.0","id":"a","method":"get"},{"jsonrpc":"2.0","id":"b","method":"get"},{"jsonrpc":"2.0","id":"c","method":"get"}]`)
	waitFor(t, func() bool { return ss.s.Stats().Queued == 2 })
	close(release)
	got := summaries(t, ss.end())
	if want := `1="released" ["a"="got" "b"="got" "c"!-32029]`; strings.Join(got, " ") != want {
		t.Errorf("a batch of 3 with 2 queue places left and the worker busy:\n got %q\nwant %s", got, want)
	}
}

// A batch with more entries than the worker can ever hold at once
// (MaxWorkers + MaxQueued) is refused whole, with one error: answering
// each entry past the bounds would hold an error per entry until the
// batch's reply is written.
func TestBatchLargerThanTheQueueIsRefused(t *testing.T) {
	entry := `{"jsonrpc":"2.0","id":%d,"method":"get"}`
	batchOf := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(entry, i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	methods := blockingMethods(nil)
	opts := Options{Logger: zerolog.Nop(), MaxWorkers: 2, MaxQueued: 3}
	if got := summaries(t, serve(t, opts, methods, batchOf(5))); strings.Join(got, " ") != `[0="got" 1="got" 2="got" 3="got" 4="got"]` {
		t.Errorf("a batch of 5 with 2 workers and 3 queue places: got %q", got)
	}
	lines := serve(t, opts, methods, batchOf(6))
	want := `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: a batch of 6 entries exceeds the 5 the worker can take at once (--max-workers plus --max-queued); send it in smaller batches","data":{"status":400,"type":"InvalidRequest"}}}`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("a batch of 6 with 2 workers and 3 queue places:\n got %q\nwant %s", lines, want)
	}
}

// Control calls run without a slot, but not without bound.
func TestControlCallsAreBounded(t *testing.T) {
	release := make(chan struct{})
	methods := blockingMethods(release)
	ss := startSession(t, Options{Logger: zerolog.Nop(), MaxWorkers: 1, Control: []string{"block", "no-such-method"}}, methods)
	for i := 0; i < maxControl+1; i++ {
		ss.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"block"}`, i))
	}
	last := ss.reply(fmt.Sprint(maxControl))
	if !strings.Contains(last, `"code":-32029`) || !strings.Contains(last, "control calls are running already") {
		t.Errorf("control call %d with %d running: %s, want Busy", maxControl+1, maxControl, last)
	}
	close(release)
	if lines := ss.end(); len(lines) != maxControl+1 {
		t.Errorf("%d control calls, %d replies", maxControl+1, len(lines))
	}
}

// Waiting calls are bounded in bytes as well as in count: a call weighs
// the bytes of its request, its entry of a batch line included, and a call
// that would pass MaxQueuedBytes is answered Busy at once.
func TestQueueIsBoundedInBytes(t *testing.T) {
	release := make(chan struct{})
	// request returns a call of exactly n bytes.
	request := func(id string, n int) string {
		head := `{"jsonrpc":"2.0","id":` + id + `,"method":"get","params":{"pad":"`
		return head + strings.Repeat("x", n-len(head)-3) + `"}}`
	}
	ss := startSession(t, Options{Logger: zerolog.Nop(), MaxWorkers: 1, MaxQueuedBytes: 1000, Control: []string{"health"}}, blockingMethods(release))
	ss.send(`{"jsonrpc":"2.0","id":0,"method":"block"}`)
	waitFor(t, func() bool { return ss.s.Stats().Busy == 1 })

	busy := `"data":{"limit":"max_queued_bytes","status":429,"type":"Busy"}}}`
	steps := []struct {
		name, send string
		queued     int64
		busyID     string
	}{
		{"600 bytes wait", request("1", 600), 1, ""},
		{"400 more reach the bound exactly", request("2", 400), 2, ""},
		{"1 byte more is Busy", `{"jsonrpc":"2.0","id":3,"method":"get"}`, 2, "3"},
		{"cancelling the 400-byte call frees its bytes", `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":2}}`, 1, ""},
		{"a 401-byte call is Busy", request("4", 401), 1, "4"},
		{"in a batch, each entry weighs its own bytes", "[" + request("5", 200) + "," + request("6", 200) + `,{"jsonrpc":"2.0","id":7,"method":"get"}]`, 3, ""},
	}
	for _, st := range steps {
		ss.send(st.send)
		if st.busyID != "" {
			if got := ss.reply(st.busyID); !strings.HasSuffix(got, busy) || !strings.Contains(got, "raise --max-queued-bytes") {
				t.Errorf("%s: got %s, want Busy naming --max-queued-bytes", st.name, got)
			}
		}
		waitFor(t, func() bool { return ss.s.Stats().Queued == st.queued })
	}
	// Lines are read in order: once the control call after the batch is
	// answered, every entry of the batch was submitted, and the release
	// cannot empty the queue before its last entry meets the bound.
	ss.send(`{"jsonrpc":"2.0","id":8,"method":"health"}`)
	ss.reply("8")
	close(release)
	got := summaries(t, ss.end())
	want := `0="released" 1="got" 2!-32800 3!-32029 4!-32029 8="ok" [5="got" 6="got" 7!-32029]`
	if strings.Join(got, " ") != want {
		t.Errorf("got  %q\nwant %s", got, want)
	}
}
