package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/internal/testbuf"
)

// Calls run on at most MaxWorkers long-lived goroutines: waiting calls
// hold none, the workers stay between bursts of calls, and every
// goroutine the server started is gone once Serve has returned.
func TestWorkersAreKeptBetweenCallsAndEndWithServe(t *testing.T) {
	release := make(chan struct{})
	methods := map[string]Method{
		"wait": func(ctx context.Context, _ json.RawMessage) (any, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return "done", nil
		},
		"quick": func(context.Context, json.RawMessage) (any, error) { return "ok", nil },
	}
	base := settledGoroutines(t, -1)
	in, w := io.Pipe()
	var out testbuf.Buffer
	s := NewServer(methods, Options{Logger: zerolog.Nop(), MaxWorkers: 3})
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, &out) }()

	// 3 run, 97 wait: the waiting ones must not hold a goroutine each.
	for i := 0; i < 100; i++ {
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"method":"wait"}`+"\n", i)
	}
	waitFor(t, func() bool { return s.Stats().Queued == 97 })
	// Serve, its read loop, 3 workers.
	if n := runtime.NumGoroutine() - base; n > 2+3 {
		t.Errorf("3 calls running and 97 waiting: %d goroutines more than before Serve, want at most 5", n)
	}
	close(release)
	waitFor(t, func() bool { return len(out.Lines()) == 100 })
	idle := settledGoroutines(t, -1)

	// A second, larger burst ends with the same goroutines: the workers
	// were kept, none was added.
	var burst strings.Builder
	for i := 100; i < 1100; i++ {
		fmt.Fprintf(&burst, `{"jsonrpc":"2.0","id":%d,"method":"quick"}`+"\n", i)
	}
	io.WriteString(w, burst.String())
	waitFor(t, func() bool { return len(out.Lines()) == 1100 })
	settledGoroutines(t, idle)
	if workers := s.pool.workersAlive(); workers != 3 {
		t.Errorf("after two bursts: %d workers, want the 3 kept", workers)
	}

	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	settledGoroutines(t, base)
}

// settledGoroutines waits until the goroutine count is want (or, with
// want -1, stops changing for a while) and returns it.
func settledGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, same := -1, 0
	for {
		runtime.Gosched()
		n := runtime.NumGoroutine()
		switch {
		case want >= 0 && n == want:
			return n
		case want < 0 && n == last:
			if same++; same >= 50 {
				return n
			}
		default:
			last, same = n, 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// workersAlive reports how many worker goroutines exist.
func (p *pool) workersAlive() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.workers
}

// After Serve returns, nothing more is read, dispatched or answered, even
// though the input is still open: a line written then gets no reply. An
// input that can be interrupted (a pipe the runtime polls) is not read
// at all after Serve returns, and no goroutine is left reading it.
func TestNothingIsReadAfterServeReturns(t *testing.T) {
	for _, input := range []string{"io.Pipe", "os.Pipe"} {
		for _, ending := range []string{"Shutdown", "context"} {
			t.Run(input+"/"+ending, func(t *testing.T) {
				var calls atomic.Int64
				methods := map[string]Method{"count": func(context.Context, json.RawMessage) (any, error) {
					return calls.Add(1), nil
				}}
				var in io.Reader
				var w io.WriteCloser
				if input == "io.Pipe" {
					in, w = io.Pipe()
				} else {
					r, pw, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					in, w = r, pw
				}
				defer w.Close()
				base := settledGoroutines(t, -1)
				var out testbuf.Buffer
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				s := NewServer(methods, Options{Logger: zerolog.Nop()})
				done := make(chan error)
				go func() { done <- s.Serve(ctx, in, &out) }()
				fmt.Fprintln(w, `{"jsonrpc":"2.0","id":1,"method":"count"}`)
				waitFor(t, func() bool { return len(out.Lines()) == 1 })
				if ending == "Shutdown" {
					s.Shutdown(time.Second)
				} else {
					cancel()
				}
				if err := <-done; err != nil {
					t.Fatalf("Serve: %v", err)
				}
				if input == "os.Pipe" {
					settledGoroutines(t, base) // the read was interrupted, not left behind
				}

				fmt.Fprintln(w, `{"jsonrpc":"2.0","id":2,"method":"count"}`)
				if input == "io.Pipe" {
					// The write returned once the read left behind took the
					// line; it drops it and ends.
					select {
					case <-s.stream.ended:
					case <-time.After(5 * time.Second):
						t.Fatal("the read left behind did not end after its line")
					}
					settledGoroutines(t, base)
				}
				if lines := out.Lines(); len(lines) != 1 || calls.Load() != 1 {
					t.Errorf("a call written after Serve returned: handler ran %d times (want 1), output %q (want only the reply to id 1)", calls.Load(), lines)
				}
			})
		}
	}
}

// Calls with the same order key run one after another in arrival order,
// waiting in the queue rather than on a worker; other calls pass them.
func TestOrderKeySerializesInArrivalOrder(t *testing.T) {
	var mu testbuf.Buffer // records the order calls start and end in
	record := func(s string) { mu.Write([]byte(s + "\n")) }
	release := make(chan struct{})
	methods := map[string]Method{
		"use": func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p struct{ Name, Tag string }
			json.Unmarshal(raw, &p)
			record("start " + p.Tag)
			if p.Tag == "a1" {
				<-release // the first call on "a" holds the key
			}
			record("end " + p.Tag)
			return p.Tag, nil
		},
	}
	order := func(_ string, params json.RawMessage) string {
		var p struct{ Name string }
		json.Unmarshal(params, &p)
		return p.Name
	}
	in, w := io.Pipe()
	var out testbuf.Buffer
	s := NewServer(methods, Options{Logger: zerolog.Nop(), MaxWorkers: 4, Order: order})
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, &out) }()

	for _, c := range []struct{ name, tag string }{{"a", "a1"}, {"a", "a2"}, {"b", "b1"}, {"a", "a3"}, {"", "free"}} {
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%q,"method":"use","params":{"name":%q,"tag":%q}}`+"\n", c.tag, c.name, c.tag)
	}
	// b1 and the keyless call finish while a1 holds "a"; a2 and a3 wait
	// in the queue, not on workers (4 workers: 3 would be taken otherwise).
	waitFor(t, func() bool { return len(out.Lines()) == 2 })
	if st := s.Stats(); st.Busy != 1 || st.Queued != 2 {
		t.Errorf("while a1 holds its key: %+v; want 1 running and a2, a3 queued", st)
	}
	close(release)
	waitFor(t, func() bool { return len(out.Lines()) == 5 })
	var got []string
	for _, l := range mu.Lines() {
		if strings.Contains(l, " a") {
			got = append(got, l)
		}
	}
	want := []string{"start a1", "end a1", "start a2", "end a2", "start a3", "end a3"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("calls on key a ran as %v; want %v", got, want)
	}
	w.Close()
	<-done
}
