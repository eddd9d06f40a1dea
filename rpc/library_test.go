package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/jsonrpc2"
)

// pipeRWC joins the two pipe ends a client holds into one connection.
type pipeRWC struct {
	io.Reader
	io.WriteCloser
}

// A Go caller can drive the worker with sourcegraph/jsonrpc2's Conn as it
// is, over newline-delimited JSON: calls with its numeric ids, results,
// errors with their code and data, notifications sent before a reply
// arriving before it, and calls in flight at once.
func TestLibraryClient(t *testing.T) {
	methods := fakeMethods()
	methods["progress"] = func(ctx context.Context, _ json.RawMessage) (any, error) {
		for i := 1; i <= 3; i++ {
			if err := CallFrom(ctx).Notify("build.progress", map[string]any{"step": i, "text": "<RUN>"}); err != nil {
				return nil, err
			}
		}
		return "built", nil
	}
	methods["slow"] = func(ctx context.Context, p json.RawMessage) (any, error) {
		time.Sleep(20 * time.Millisecond)
		return p, nil
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := NewServer(methods, Options{Logger: zerolog.Nop(), MaxWorkers: 4})
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), inR, outW) }()

	var mu sync.Mutex
	var seen []string // the notifications, in the order they arrived
	client := jsonrpc2.NewConn(context.Background(), jsonrpc2.NewPlainObjectStream(pipeRWC{outR, inW}),
		jsonrpc2.HandlerWithError(func(_ context.Context, _ *jsonrpc2.Conn, req *jsonrpc2.Request) (any, error) {
			if !req.Notif {
				t.Errorf("the worker sent a request with an id: %s", req.Method)
			}
			mu.Lock()
			seen = append(seen, req.Method+" "+string(*req.Params))
			mu.Unlock()
			return nil, nil
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var sum int
	if err := client.Call(ctx, "sum", []int{1, 2, 3}, &sum); err != nil || sum != 6 {
		t.Errorf("sum [1,2,3]: %d, %v; want 6", sum, err)
	}

	var res string
	err := client.Call(ctx, "echo", map[string]any{"text": 5}, &res)
	var rerr *jsonrpc2.Error
	if !errors.As(err, &rerr) || rerr.Code != jsonrpc2.CodeInvalidParams || rerr.Data == nil {
		t.Fatalf("echo with a number for text: %v; want the library's *fault.Error with code %d and data", err, jsonrpc2.CodeInvalidParams)
	}
	var data struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if json.Unmarshal(*rerr.Data, &data); data.Type != "BadRequest" || data.Status != 400 {
		t.Errorf("the error's data is %s; want type BadRequest and status 400", *rerr.Data)
	}

	if err := client.Call(ctx, "progress", nil, &res); err != nil || res != "built" {
		t.Fatalf("progress: %q, %v", res, err)
	}
	mu.Lock()
	want := []string{
		`build.progress {"step":1,"text":"\u003cRUN\u003e"}`,
		`build.progress {"step":2,"text":"\u003cRUN\u003e"}`,
		`build.progress {"step":3,"text":"\u003cRUN\u003e"}`,
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("notifications before the reply: %q; want %q", seen, want)
	}
	mu.Unlock()

	// Calls in flight at once, each answered with its own result.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []int
			if err := client.Call(ctx, "slow", []int{i}, &got); err != nil || len(got) != 1 || got[0] != i {
				t.Errorf("slow %d: %d, %v", i, got, err)
			}
		}()
	}
	wg.Wait()

	client.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve after the client closed: %v", err)
	}
}
