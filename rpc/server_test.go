package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/internal/testbuf"
)

// fakeMethods are stand-ins for handlers: these tests pin the framing and
// dispatch, which involve no Podman.
func fakeMethods() map[string]Method {
	sum := func(_ context.Context, p json.RawMessage) (any, error) {
		var xs []int
		if err := json.Unmarshal(p, &xs); err != nil {
			return nil, fault.Errorf(fault.KindInvalidParams, "Invalid params: %v", err)
		}
		t := 0
		for _, x := range xs {
			t += x
		}
		return t, nil
	}
	return map[string]Method{
		"sum": sum,
		"subtract": func(_ context.Context, p json.RawMessage) (any, error) {
			var xs []int
			if json.Unmarshal(p, &xs) == nil && len(xs) == 2 {
				return xs[0] - xs[1], nil
			}
			var named struct {
				Minuend    int `json:"minuend" rpc:"required"`
				Subtrahend int `json:"subtrahend"`
			}
			if err := DecodeParams(p, &named); err != nil {
				return nil, err
			}
			return named.Minuend - named.Subtrahend, nil
		},
		"update":       func(context.Context, json.RawMessage) (any, error) { return nil, nil },
		"notify_hello": func(context.Context, json.RawMessage) (any, error) { return nil, nil },
		"get_data":     func(context.Context, json.RawMessage) (any, error) { return []any{"hello", 5}, nil },
		"echo": func(_ context.Context, p json.RawMessage) (any, error) {
			var v struct {
				Text string `json:"text" rpc:"required"`
				N    int    `json:"n"`
			}
			if err := DecodeParams(p, &v); err != nil {
				return nil, err
			}
			return v.Text, nil
		},
		"boom": func(context.Context, json.RawMessage) (any, error) { panic("kaboom") },
		"notfound": func(context.Context, json.RawMessage) (any, error) {
			return nil, fault.Errorf(fault.KindNotFound, "no such image: x")
		},
		"plain": func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("plain go error") },
		"raw_invalid_utf8": func(context.Context, json.RawMessage) (any, error) {
			return json.RawMessage("{\"s\":\"a\xffb\"}"), nil
		},
		"indented": func(context.Context, json.RawMessage) (any, error) {
			return json.RawMessage("{\n  \"a\": [1,\n 2]\n}"), nil
		},
		"unencodable": func(context.Context, json.RawMessage) (any, error) {
			return map[string]any{"f": func() {}}, nil
		},
	}
}

// serve runs a whole session: input is written, the input ends, and the
// output lines are returned once Serve has answered everything.
func serve(t *testing.T, opts Options, methods map[string]Method, input string) []string {
	t.Helper()
	var out testbuf.Buffer
	s := NewServer(methods, opts)
	if err := s.Serve(context.Background(), strings.NewReader(input), &out); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	lines := out.Lines()
	for _, l := range lines {
		if !utf8.ValidString(l) || !json.Valid([]byte(l)) {
			t.Errorf("an output line is not valid UTF-8 JSON: %q", l)
		}
	}
	return lines
}

// summary reduces a response line to "ID=RESULT" or "ID!CODE", and a batch
// to its sorted summaries in brackets, so a table row reads like the spec.
func summary(t *testing.T, line string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("output line is not JSON: %q", line)
	}
	if arr, ok := v.([]any); ok {
		var parts []string
		for _, e := range arr {
			b, _ := json.Marshal(e)
			parts = append(parts, summary(t, string(b)))
		}
		sort.Strings(parts)
		return "[" + strings.Join(parts, " ") + "]"
	}
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
		Error   *struct {
			Code    json.Number `json:"code"`
			Message string      `json:"message"`
			Data    struct {
				Type   string `json:"type"`
				Status int    `json:"status"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("bad response %q: %v", line, err)
	}
	if r.JSONRPC != "2.0" {
		t.Errorf("response without \"jsonrpc\":\"2.0\" (Dart's json_rpc_2 drops those): %s", line)
	}
	if r.Error != nil {
		if _, err := r.Error.Code.Int64(); err != nil || r.Error.Data.Type == "" || r.Error.Data.Status == 0 || r.Error.Message == "" {
			t.Errorf("error without integer code, message, data.type and data.status: %s", line)
		}
		return fmt.Sprintf("%s!%s", r.ID, r.Error.Code)
	}
	return fmt.Sprintf("%s=%s", r.ID, r.Result)
}

func summaries(t *testing.T, lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, summary(t, l))
	}
	sort.Strings(out)
	return out
}

func TestProtocol(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // one summary per output line, any order
	}{
		// The examples of section 7 of the JSON-RPC 2.0 specification.
		{"positional params", `{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`, []string{"1=19"}},
		{"positional params reversed", `{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`, []string{"2=-19"}},
		{"named params", `{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`, []string{"3=19"}},
		{"notification", `{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`, nil},
		{"notification of unknown method", `{"jsonrpc": "2.0", "method": "foobar"}`, nil},
		{"unknown method", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`, []string{`"1"!-32601`}},
		{"invalid JSON", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`, []string{"null!-32700"}},
		{"invalid request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`, []string{"null!-32600"}},
		{"batch, invalid JSON", `[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]`, []string{"null!-32700"}},
		{"empty batch", `[]`, []string{"null!-32600"}},
		{"batch of one non-request", `[1]`, []string{"[null!-32600]"}},
		{"batch of non-requests", `[1,2,3]`, []string{"[null!-32600 null!-32600 null!-32600]"}},
		{"mixed batch", `[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},{"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},{"foo": "boo"},{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},{"jsonrpc": "2.0", "method": "get_data", "id": "9"}]`,
			[]string{`["1"=7 "2"=19 "5"!-32601 "9"=["hello",5] null!-32600]`}},
		{"batch of notifications", `[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]`, nil},

		// Ids are echoed byte for byte, whatever their type.
		{"id zero", `{"jsonrpc":"2.0","id":0,"method":"get_data"}`, []string{`0=["hello",5]`}},
		{"id null is a call, not a notification", `{"jsonrpc":"2.0","id":null,"method":"get_data"}`, []string{`null=["hello",5]`}},
		{"negative id", `{"jsonrpc":"2.0","id":-7,"method":"get_data"}`, []string{`-7=["hello",5]`}},
		{"fractional id", `{"jsonrpc":"2.0","id":1.5,"method":"get_data"}`, []string{`1.5=["hello",5]`}},
		{"id beyond uint64", `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"get_data"}`, []string{`123456789012345678901234567890=["hello",5]`}},
		{"exponent id", `{"jsonrpc":"2.0","id":1e3,"method":"get_data"}`, []string{`1e3=["hello",5]`}},
		{"unicode string id", `{"jsonrpc":"2.0","id":"ü-\u00fc","method":"get_data"}`, []string{`"ü-\u00fc"=["hello",5]`}},
		{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"get_data"}`, []string{"null!-32600"}},
		{"boolean id", `{"jsonrpc":"2.0","id":true,"method":"get_data"}`, []string{"null!-32600"}},

		// Request validation.
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"get_data"}`, []string{"1!-32600"}},
		{"missing version", `{"id":1,"method":"get_data"}`, []string{"1!-32600"}},
		{"missing method", `{"jsonrpc":"2.0","id":1}`, []string{"1!-32600"}},
		{"params a string", `{"jsonrpc":"2.0","id":1,"method":"echo","params":"x"}`, []string{"1!-32600"}},
		{"params null", `{"jsonrpc":"2.0","id":1,"method":"echo","params":null}`, []string{"1!-32600"}},
		{"member given twice", `{"jsonrpc":"2.0","id":1,"id":2,"method":"get_data"}`, []string{"null!-32600"}},
		{"method given twice", `{"jsonrpc":"2.0","id":1,"method":"get_data","method":"sum"}`, []string{"null!-32600"}},
		{"member names are case-sensitive: ID is not id", `{"jsonrpc":"2.0","ID":1,"method":"get_data"}`, nil},
		{"member names are case-sensitive: Method is not method", `{"jsonrpc":"2.0","id":1,"Method":"get_data"}`, []string{"1!-32600"}},
		{"escaped member name", `{"jsonrpc":"2.0","\u0069d":1,"method":"get_data"}`, []string{`1=["hello",5]`}},
		{"escaped method name", `{"jsonrpc":"2.0","id":1,"method":"get\u005fdata"}`, []string{`1=["hello",5]`}},
		{"other members are ignored", `{"jsonrpc":"2.0","meta":{"a":["}",{"id":9}]},"id":1,"method":"get_data","x":null}`, []string{`1=["hello",5]`}},
		{"whitespace everywhere", "{ \"jsonrpc\" :\t\"2.0\" , \"id\" : 1 ,\"method\":\"get_data\" }", []string{`1=["hello",5]`}},
		{"quotes, brackets and backslashes inside strings", `{"jsonrpc":"2.0","id":"\"}]","method":"echo","params":{"text":"a \"}] \\\\","n":1}}`, []string{`"\"}]"="a \"}] \\\\"`}},
		{"batch with whitespace", "[ {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get_data\"} ,\t{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"get_data\"} ]", []string{`[1=["hello",5] 2=["hello",5]]`}},
		{"jsonrpc spelled with an escape", `{"jsonrpc":"2\u002e0","id":1,"method":"get_data"}`, []string{"1!-32600"}},
		// JSON text is UTF-8: a reply never repeats invalid bytes.
		{"id not valid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":\"\xff\xfe\",\"method\":\"get_data\"}", []string{"null!-32600"}},
		{"method not valid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get\xff\"}", []string{"1!-32600"}},
		{"params not valid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"text\":\"\xc3\"}}", []string{"1!-32600"}},
		{"a batch entry not valid UTF-8", "[{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"get_data\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"get_data\"}]", []string{`[2=["hello",5] null!-32600]`}},
		{"valid UTF-8 passes", `{"jsonrpc":"2.0","id":"ü€😀","method":"echo","params":{"text":"ü€😀"}}`, []string{`"ü€😀"="ü€😀"`}},
		{"scalar line", `42`, []string{"null!-32600"}},
		{"string line", `"ping"`, []string{"null!-32600"}},
		{"garbage", `}{`, []string{"null!-32700"}},
		{"blank lines are skipped", "\n  \n\t\n", nil},
		{"CRLF line ends", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get_data\"}\r\n", []string{`1=["hello",5]`}},
		{"last line without newline", `{"jsonrpc":"2.0","id":1,"method":"get_data"}`, []string{`1=["hello",5]`}},

		// Params decoding names the field.
		{"missing required field", `{"jsonrpc":"2.0","id":1,"method":"echo","params":{}}`, []string{"1!-32602"}},
		{"field of wrong type", `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":5}}`, []string{"1!-32602"}},
		{"unknown field", `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","txet":"b"}}`, []string{"1!-32602"}},
		{"positional params to a named method", `{"jsonrpc":"2.0","id":1,"method":"echo","params":["a"]}`, []string{"1!-32602"}},

		// Handler failures stay inside their call.
		{"panic", `{"jsonrpc":"2.0","id":1,"method":"boom"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"get_data"}`, []string{"1!-32603", `2=["hello",5]`}},
		{"typed error", `{"jsonrpc":"2.0","id":1,"method":"notfound"}`, []string{"1!-32004"}},
		{"plain Go error is internal, never code 0", `{"jsonrpc":"2.0","id":1,"method":"plain"}`, []string{"1!-32603"}},
		{"unencodable result", `{"jsonrpc":"2.0","id":1,"method":"unencodable"}`, []string{"1!-32603"}},
		{"raw JSON result with newlines is sent on one line", `{"jsonrpc":"2.0","id":1,"method":"indented"}`, []string{`1={"a":[1,2]}`}},
		{"raw JSON result with invalid UTF-8 is sent with U+FFFD", `{"jsonrpc":"2.0","id":1,"method":"raw_invalid_utf8"}`, []string{`1={"s":"a�b"}`}},

		// Cancellation of a call not in flight is harmless; as a call it gets null.
		{"cancel of nothing", `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":99}}`, nil},
		{"cancel sent as a call", `{"jsonrpc":"2.0","id":1,"method":"$/cancelRequest","params":{"id":99}}`, []string{"1=null"}},
		{"unknown $/ notification ignored", `{"jsonrpc":"2.0","method":"$/setTrace","params":{"value":"off"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A parse error must never stop the worker: every case is
			// followed by a ping whose answer must still come back.
			in := tt.in + "\n" + `{"jsonrpc":"2.0","id":"after","method":"get_data"}` + "\n"
			got := summaries(t, serve(t, Options{Logger: zerolog.Nop()}, fakeMethods(), in))
			want := append(append([]string{}, tt.want...), `"after"=["hello",5]`)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("sent %s\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

// Params reach the handler as the bytes the caller sent: key order,
// escapes and whitespace inside are the caller's, in a call, a
// notification and a batch entry alike.
func TestParamsArriveAsSent(t *testing.T) {
	tests := []struct{ name, params string }{
		{"key order", `{"z":1,"a":2,"m":{"y":true,"b":null}}`},
		{"escapes kept", `{"html":"\u003cb\u003e \u0026 <i>","uni":"\u00fc ü"}`},
		{"whitespace inside", "{ \"a\" :\t[ 1 ,\r 2 ] , \"b\":{} }"}, // a newline would end the line
		{"positional", `[ "x" , 1e3 , -0.5 ]`},
		{"number spelling", `{"n":1.50,"big":123456789012345678901234567890}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			methods := map[string]Method{"keep": func(_ context.Context, p json.RawMessage) (any, error) {
				mu.Lock()
				got = append(got, string(p))
				mu.Unlock()
				return nil, nil
			}}
			in := `{"jsonrpc":"2.0","id":1,"method":"keep","params":` + tt.params + "}\n" +
				`{"jsonrpc":"2.0","method":"keep","params":` + tt.params + "}\n" +
				`[{"jsonrpc":"2.0","id":2,"method":"keep","params":` + tt.params + "}]\n"
			serve(t, Options{Logger: zerolog.Nop()}, methods, in)
			if len(got) != 3 {
				t.Fatalf("3 messages sent, the handler ran %d times", len(got))
			}
			for _, g := range got {
				if g != tt.params {
					t.Errorf("sent params %s\n handler got %s", tt.params, g)
				}
			}
		})
	}
}

func TestErrorCarriesTypeStatusAndField(t *testing.T) {
	lines := serve(t, Options{Logger: zerolog.Nop()}, fakeMethods(), `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":5}}`)
	want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: \"text\" must be a string, got a number","data":{"field":"text","status":400,"type":"BadRequest"}}}`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("sent a number for the string field \"text\"\n got %q\nwant %q", lines, want)
	}
	lines = serve(t, Options{Logger: zerolog.Nop()}, fakeMethods(), `{"jsonrpc":"2.0","id":"x","method":"notfound"}`)
	want = `{"jsonrpc":"2.0","id":"x","error":{"code":-32004,"message":"no such image: x","data":{"status":404,"type":"NotFound"}}}`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("got %q\nwant %q", lines, want)
	}
}

func TestLineTooLong(t *testing.T) {
	long := `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"` + strings.Repeat("x", 300<<10) + `"}}`
	in := long + "\n" + `{"jsonrpc":"2.0","id":2,"method":"echo","params":{"text":"short"}}` + "\n"
	lines := serve(t, Options{Logger: zerolog.Nop(), MaxLineBytes: 100 << 10}, fakeMethods(), in)
	got := summaries(t, lines)
	want := []string{`2="short"`, "null!-32600"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("sent a %d-byte line with a 100 KiB limit, then a short call\n got %q\nwant %q", len(long), got, want)
	}
	for _, l := range lines {
		if strings.Contains(l, "TooLarge") && !strings.Contains(l, "max-line-bytes") {
			t.Errorf("the error does not say which setting limits lines: %s", l)
		}
	}
}

func TestDuplicateIDInFlight(t *testing.T) {
	release := make(chan struct{})
	methods := map[string]Method{"wait": func(ctx context.Context, _ json.RawMessage) (any, error) {
		<-release
		return "done", nil
	}}
	in, w := io.Pipe()
	var out testbuf.Buffer
	s := NewServer(methods, Options{Logger: zerolog.Nop()})
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, &out) }()
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":7,"method":"wait"}`)
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":7,"method":"wait"}`)
	waitFor(t, func() bool { return len(out.Lines()) == 1 })
	close(release)
	w.Close()
	<-done
	got := summaries(t, out.Lines())
	if strings.Join(got, " ") != `7!-32600 7="done"` {
		t.Errorf("sent id 7 twice while the first was in flight: got %q, want the second refused", got)
	}
}

func TestConcurrencyIsBoundedAndQueued(t *testing.T) {
	var running, peak atomic.Int64
	methods := map[string]Method{"work": func(ctx context.Context, _ json.RawMessage) (any, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return "ok", nil
	}}
	var in strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"work"}`+"\n", i)
	}
	lines := serve(t, Options{Logger: zerolog.Nop(), MaxWorkers: 3}, methods, in.String())
	if len(lines) != 20 {
		t.Fatalf("20 calls, %d replies", len(lines))
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("MaxWorkers 3: at most %d calls ran at once, want exactly 3", p)
	}
}

func TestCancelRunningAndQueuedCalls(t *testing.T) {
	started := make(chan struct{}, 1)
	methods := map[string]Method{"block": func(ctx context.Context, _ json.RawMessage) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, fmt.Errorf("stopped: %w", ctx.Err())
	}, "get": func(context.Context, json.RawMessage) (any, error) { return "got", nil }}
	in, w := io.Pipe()
	var out testbuf.Buffer
	s := NewServer(methods, Options{Logger: zerolog.Nop(), MaxWorkers: 1})
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, &out) }()
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":"run","method":"block"}`)
	<-started
	// "queued" waits behind "run" (one worker): cancelling it must answer
	// at once, without waiting for the worker.
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":"queued","method":"get"}`)
	waitFor(t, func() bool { return s.Stats().Queued == 1 })
	fmt.Fprintln(w, `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"queued"}}`)
	waitFor(t, func() bool { return len(out.Lines()) == 1 })
	fmt.Fprintln(w, `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"run"}}`)
	waitFor(t, func() bool { return len(out.Lines()) == 2 })
	w.Close()
	<-done
	lines := out.Lines()
	if summary(t, lines[0]) != `"queued"!-32800` || summary(t, lines[1]) != `"run"!-32800` {
		t.Errorf("cancelled a queued then a running call: got %q", lines)
	}
}

func TestEOFWaitsForCallsInFlight(t *testing.T) {
	methods := map[string]Method{"slow": func(ctx context.Context, _ json.RawMessage) (any, error) {
		time.Sleep(150 * time.Millisecond)
		return "finished", nil
	}}
	in := `{"jsonrpc":"2.0","id":1,"method":"slow"}` + "\n" + `[{"jsonrpc":"2.0","id":2,"method":"slow"},{"jsonrpc":"2.0","id":3,"method":"slow"}]` + "\n"
	got := summaries(t, serve(t, Options{Logger: zerolog.Nop()}, methods, in))
	want := []string{`1="finished"`, `[2="finished" 3="finished"]`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("input ended with 3 calls in flight: got %q, want all answered", got)
	}
}

func TestNotificationsPrecedeTheReply(t *testing.T) {
	methods := map[string]Method{"progress": func(ctx context.Context, _ json.RawMessage) (any, error) {
		c := CallFrom(ctx)
		for i := 0; i < 3; i++ {
			if err := c.Notify("build.progress", map[string]any{"request_id": c.ID, "line": fmt.Sprint("step ", i)}); err != nil {
				return nil, err
			}
		}
		return "built", nil
	}}
	lines := serve(t, Options{Logger: zerolog.Nop()}, methods, `{"jsonrpc":"2.0","id":"b1","method":"progress"}`)
	want := []string{
		`{"jsonrpc":"2.0","method":"build.progress","params":{"line":"step 0","request_id":"b1"}}`,
		`{"jsonrpc":"2.0","method":"build.progress","params":{"line":"step 1","request_id":"b1"}}`,
		`{"jsonrpc":"2.0","method":"build.progress","params":{"line":"step 2","request_id":"b1"}}`,
		`{"jsonrpc":"2.0","id":"b1","result":"built"}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestShutdownCancelsRunningCalls(t *testing.T) {
	started := make(chan struct{})
	methods := map[string]Method{"block": func(ctx context.Context, _ json.RawMessage) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	in, w := io.Pipe()
	defer w.Close()
	var out testbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	s := NewServer(methods, Options{Logger: zerolog.Nop()})
	done := make(chan error)
	go func() { done <- s.Serve(ctx, in, &out) }()
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":1,"method":"block"}`)
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if got := summaries(t, out.Lines()); strings.Join(got, " ") != "1!-32800" {
		t.Errorf("shutdown with a call running: got %q, want it cancelled with -32800", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestBrokenOutputCancelsCalls(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	methods := map[string]Method{
		"block": func(ctx context.Context, _ json.RawMessage) (any, error) {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return nil, ctx.Err()
		},
		"get": func(context.Context, json.RawMessage) (any, error) { return "x", nil },
	}
	in, w := io.Pipe()
	defer w.Close()
	s := NewServer(methods, Options{Logger: zerolog.Nop()})
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, failWriter{}) }()
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":1,"method":"block"}`)
	<-started // else "block" may be cancelled before it runs, which is right but not what this tests
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":2,"method":"get"}`)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the output broke, but the running call was not cancelled")
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("Serve returned %v, want the write error", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Regression: calls waiting for a worker ran in whatever order their
// goroutines reached the semaphore, not in arrival order.
func TestQueuedCallsRunInArrivalOrder(t *testing.T) {
	var mu sync.Mutex
	var order []int
	methods := map[string]Method{"record": func(_ context.Context, p json.RawMessage) (any, error) {
		var v struct {
			N int `json:"n"`
		}
		if err := DecodeParams(p, &v); err != nil {
			return nil, err
		}
		mu.Lock()
		order = append(order, v.N)
		mu.Unlock()
		return v.N, nil
	}}
	var in strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"record","params":{"n":%d}}`+"\n", i, i)
	}
	serve(t, Options{Logger: zerolog.Nop(), MaxWorkers: 1}, methods, in.String())
	for i, n := range order {
		if n != i {
			t.Fatalf("with one worker, call %d ran in position %d: %v", n, i, order)
		}
	}
}

func TestDecodeParamsEmbedded(t *testing.T) {
	type Shared struct {
		Memory string `json:"memory"`
	}
	type params struct {
		Image string `json:"image" rpc:"required"`
		Shared
	}
	var p params
	if err := DecodeParams(json.RawMessage(`{"image":"x","memory":"20m"}`), &p); err != nil || p.Memory != "20m" || p.Image != "x" {
		t.Errorf("embedded field: got %+v, %v", p, err)
	}
	err := DecodeParams(json.RawMessage(`{"image":"x","memory":5}`), &p)
	if e, ok := err.(*fault.Error); !ok || e.Fields["field"] != "memory" {
		t.Errorf("type error in an embedded field: got %v, want it to name \"memory\"", err)
	}
}

// A param every method accepts (which connection to use) is decoded apart
// from each method's own params, under the same rules.
func TestDecodeParamsShared(t *testing.T) {
	type common struct {
		Connection string `json:"connection"`
	}
	type own struct {
		Image string `json:"image" rpc:"required"`
	}
	tests := []struct {
		sent      string
		wantImage string
		wantConn  string
		wantField string // the field an error names; "" for success
	}{
		{`{"image":"x"}`, "x", "", ""},
		{`{"image":"x","connection":"b"}`, "x", "b", ""},
		{`{"connection":"b"}`, "", "", "image"},                // the method's required field is still required
		{`{"image":"x","connection":5}`, "", "", "connection"}, // type errors name the shared field
		{`{"image":"x","conection":"b"}`, "", "", "conection"}, // a typo is unknown, as always
	}
	for _, tt := range tests {
		var p own
		var c common
		err := DecodeParams(json.RawMessage(tt.sent), &p, &c)
		if tt.wantField != "" {
			if e, ok := err.(*fault.Error); !ok || e.Kind != fault.KindInvalidParams || e.Fields["field"] != tt.wantField {
				t.Errorf("sent %s: got %v, want InvalidParams naming %q", tt.sent, err, tt.wantField)
			}
			continue
		}
		if err != nil || p.Image != tt.wantImage || c.Connection != tt.wantConn {
			t.Errorf("sent %s: got image %q, connection %q, %v; want %q, %q", tt.sent, p.Image, c.Connection, err, tt.wantImage, tt.wantConn)
		}
	}
}

func TestMetrics(t *testing.T) {
	m := NewMetrics()
	for i := 1; i <= 100; i++ {
		m.Observe("ping", time.Duration(i)*time.Millisecond, nil)
	}
	m.Observe("run", 5*time.Millisecond, fault.Errorf(fault.KindTimeout, "late"))
	s := m.Snapshot()
	if s.RequestsTotal != 101 || s.ErrorsTotal != 1 {
		t.Errorf("totals: %+v", s)
	}
	if p := s.Methods["ping"]; p.Count != 100 || p.P50ms != 50 || p.P99ms != 99 || p.Errors != 0 {
		t.Errorf("ping: %+v, want p50 50 and p99 99 over 1..100 ms", p)
	}
	if r := s.Methods["run"]; r.Count != 1 || r.Errors != 1 || r.P50ms != 5 {
		t.Errorf("run: %+v", r)
	}
	// The window is bounded: old durations fall out.
	for i := 0; i < window; i++ {
		m.Observe("ping", time.Second, nil)
	}
	if p := m.Snapshot().Methods["ping"]; p.P50ms != 1000 || p.Count != 100+window {
		t.Errorf("after a full window of 1 s calls: %+v", p)
	}
}

func TestShutdownGivesCallsTheirGracePeriod(t *testing.T) {
	release := make(chan struct{})
	methods := map[string]Method{
		"quick": func(ctx context.Context, _ json.RawMessage) (any, error) {
			select {
			case <-release:
				return "finished", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		"stuck": func(ctx context.Context, _ json.RawMessage) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	in, w := io.Pipe()
	defer w.Close()
	var out testbuf.Buffer
	s := NewServer(methods, Options{Logger: zerolog.Nop()})
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, &out) }()
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":1,"method":"quick"}`)
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":2,"method":"stuck"}`)
	waitFor(t, func() bool { return s.Stats().Busy == 2 })
	go s.Shutdown(300 * time.Millisecond)
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.closing })
	fmt.Fprintln(w, `{"jsonrpc":"2.0","id":3,"method":"quick"}`) // arrives during the grace period
	close(release)                                               // "quick" finishes within it
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown, with the input still open")
	}
	got := summaries(t, out.Lines())
	if strings.Join(got, " ") != `1="finished" 2!-32800 3!-32003` {
		t.Errorf("got %q: want the finished call answered, the stuck one cancelled after the grace period, and the late one refused", got)
	}
}

// Regression: each invented method name got its own metrics entry, kept forever.
func TestUnknownMethodsShareOneMetricsBucket(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	observe := func(method string, _ time.Duration, _ *fault.Error) { mu.Lock(); seen[method]++; mu.Unlock() }
	in := `{"jsonrpc":"2.0","id":1,"method":"nope1"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"nope2"}` + "\n" + `{"jsonrpc":"2.0","id":3,"method":"get_data"}` + "\n"
	serve(t, Options{Logger: zerolog.Nop(), Observe: observe}, fakeMethods(), in)
	if len(seen) != 2 || seen["(unknown method)"] != 2 || seen["get_data"] != 1 {
		t.Errorf("observed %v", seen)
	}
}

// Regression: a signal before Serve started made Shutdown call a nil func.
func TestShutdownBeforeServe(t *testing.T) {
	s := NewServer(fakeMethods(), Options{Logger: zerolog.Nop()})
	s.Shutdown(0)
	in, w := io.Pipe()
	defer w.Close()
	done := make(chan error)
	go func() { done <- s.Serve(context.Background(), in, io.Discard) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
}

func TestMillisMatchesTheFloatItReplaced(t *testing.T) {
	for _, us := range []int64{0, 1, 10, 81, 100, 999, 1000, 1284, 2000, 88510, 88501, 123456789, -1500} {
		d := time.Duration(us) * time.Microsecond
		want := strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
		if got := string(millis(d)); got != want {
			t.Errorf("millis(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestMember(t *testing.T) {
	tests := []struct{ params, name, want string }{
		{`{"name":"x","content":"` + strings.Repeat("y", 1000) + `"}`, "name", `"x"`},
		{`{"content":"a\"name\":1","name" : "x" }`, "name", `"x"`},
		{`{"n\u0061me":"x"}`, "name", `"x"`},
		{`{"nested":{"name":"no"},"name":["a"]}`, "name", `["a"]`},
		{`{"other":1}`, "name", ``},
		{`[{"name":"x"}]`, "name", ``},
		{``, "name", ``},
		{`{"name":`, "name", ``},
		{`{"a":"unterminated`, "name", ``},
	}
	for _, tt := range tests {
		if got := string(Member(json.RawMessage(tt.params), tt.name)); got != tt.want {
			t.Errorf("Member(%.40q, %q) = %q, want %q", tt.params, tt.name, got, tt.want)
		}
	}
}
