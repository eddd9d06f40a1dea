package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
)

// Server.Call runs a method in-process the way a call read by Serve runs,
// without Serve: the outcome, the one log line and the Observe.
func TestCallWithoutServe(t *testing.T) {
	tests := []struct {
		name, method, params string
		want                 string // the result as JSON, or the error as "Kind: message"
	}{
		{"a result", "get_data", "", `["hello",5]`},
		{"params as sent", "subtract", `{"minuend":5,"subtrahend":2}`, `3`},
		{"a typed error", "notfound", "", "NotFound: no such image: x"},
		{"a plain Go error is internal", "plain", "", "InternalError: internal error: plain go error"},
		{"a panic is an internal error for this call alone", "boom", "", "InternalError: internal error in boom: kaboom"},
		{"params decoding names the field", "echo", `{"text":5}`, `BadRequest: Invalid params: "text" must be a string, got a number`},
		{"an unknown method", "nope", "", `MethodNotFound: Method not found: "nope"; see protocol.md for the methods this worker answers`},
		{"cancelling nothing answers null", CancelMethod, `{"id":1}`, `null`},
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	observed := map[string]int{}
	s := NewServer(fakeMethods(), Options{Logger: zerolog.New(&logs), Observe: func(method string, _ time.Duration, _ *fault.Error) {
		mu.Lock()
		observed[method]++
		mu.Unlock()
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			var params json.RawMessage
			if tt.params != "" {
				params = json.RawMessage(tt.params)
			}
			res, err := s.Call(context.Background(), tt.method, params)
			if got := callOutcome(t, res, err); got != tt.want {
				t.Errorf("Call(%q, %s)\n got %s\nwant %s", tt.method, tt.params, got, tt.want)
			}
			if n := strings.Count(logs.String(), `"message":"call"`); n != 1 && tt.method != CancelMethod {
				t.Errorf("%d log lines for the call, want 1:\n%s", n, logs.String())
			}
		})
	}
	if observed["get_data"] != 1 || observed["boom"] != 1 || observed["(unknown method)"] != 1 {
		t.Errorf("observed %v", observed)
	}
}

// callOutcome renders what Call returned as JSON, or as "Kind: message".
func callOutcome(t *testing.T, res any, err error) string {
	t.Helper()
	if err != nil {
		var e *fault.Error
		if !errors.As(err, &e) {
			t.Fatalf("Call returned %T, not a *fault.Error: %v", err, err)
		}
		return Type(e.Kind) + ": " + e.Message
	}
	b, jerr := json.Marshal(res)
	if jerr != nil {
		t.Fatal(jerr)
	}
	return string(b)
}

// Call shares the worker slots, the FIFO and its bounds with Serve's
// stream, and runs control methods without a slot.
func TestCallAlongsideServe(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	methods := blockingMethods(release)
	methods["record"] = func(_ context.Context, p json.RawMessage) (any, error) {
		mu.Lock()
		order = append(order, string(p))
		mu.Unlock()
		return nil, nil
	}
	ss := startSession(t, Options{Logger: zerolog.Nop(), MaxWorkers: 1, MaxQueued: 2, Control: []string{"health"}}, methods)
	ss.send(`{"jsonrpc":"2.0","id":1,"method":"block"}`)
	waitFor(t, func() bool { return ss.s.Stats().Busy == 1 })

	// A Call waits its turn in the same FIFO, before a stream call read
	// after it.
	called := make(chan string)
	go func() {
		res, err := ss.s.Call(context.Background(), "record", json.RawMessage(`["call"]`))
		called <- callOutcome(t, res, err)
	}()
	waitFor(t, func() bool { return ss.s.Stats().Queued == 1 })
	ss.send(`{"jsonrpc":"2.0","id":2,"method":"record","params":["stream"]}`)
	waitFor(t, func() bool { return ss.s.Stats().Queued == 2 })

	// The queue is full, for Call as for the stream; a control method
	// through Call runs at once.
	if res, err := ss.s.Call(context.Background(), "get", nil); !strings.HasPrefix(callOutcome(t, res, err), "Busy: the worker is busy") {
		t.Errorf("Call with the queue full: %s, want Busy", callOutcome(t, res, err))
	}
	if res, err := ss.s.Call(context.Background(), "health", nil); callOutcome(t, res, err) != `"ok"` {
		t.Errorf("control method through Call with every slot busy: %s", callOutcome(t, res, err))
	}

	close(release)
	if got := <-called; got != "null" {
		t.Errorf("the queued Call answered %s", got)
	}
	ss.end()
	if strings.Join(order, " ") != `["call"] ["stream"]` {
		t.Errorf("ran in the order %v, want the Call (which arrived first) before the stream call", order)
	}
}

// A Call waiting for a slot whose context ends answers at once; one
// running when Shutdown's grace ends is cancelled; one made during
// Shutdown is refused.
func TestCallCancellationAndShutdown(t *testing.T) {
	release := make(chan struct{})
	s := NewServer(blockingMethods(release), Options{Logger: zerolog.Nop(), MaxWorkers: 1})
	running := make(chan string)
	go func() {
		res, err := s.Call(context.Background(), "block", nil)
		running <- callOutcome(t, res, err)
	}()
	waitFor(t, func() bool { return s.Stats().Busy == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan string)
	go func() {
		res, err := s.Call(ctx, "get", nil)
		queued <- callOutcome(t, res, err)
	}()
	waitFor(t, func() bool { return s.Stats().Queued == 1 })
	cancel()
	if got := <-queued; got != "Cancelled: Request cancelled" {
		t.Errorf("a queued Call whose context ended: %s", got)
	}

	shutdown := make(chan struct{})
	go func() {
		s.Shutdown(50 * time.Millisecond)
		close(shutdown)
	}()
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.closing })
	if res, err := s.Call(context.Background(), "get", nil); callOutcome(t, res, err) != "Unavailable: the worker is shutting down and takes no new calls" {
		t.Errorf("a Call during Shutdown: %s", callOutcome(t, res, err))
	}
	if got := <-running; got != "Cancelled: Request cancelled: the worker is shutting down" {
		t.Errorf("a Call still running after the grace period: %s", got)
	}
	<-shutdown

}
