package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
)

// FuzzServe feeds arbitrary bytes to a whole session. Whatever comes in,
// the worker must not panic or hang, and every line it writes must be
// valid UTF-8 and a JSON-RPC 2.0 response (or a batch of them) with an
// integer error code: never a half line, never anything else. go test
// runs the seeds below; go test -fuzz FuzzServe ./rpc explores further.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a"}},{"jsonrpc":"2.0","method":"echo"}]`,
		`[]`, `[1,2,3]`, `{"jsonrpc":"2.0","method":1}`, `{"jsonrpc":"2.0","id":null,"method":"get_data"}`,
		`{"jsonrpc":"2.0","id":1,"method":"$/cancelRequest","params":{"id":1}}`,
		`{"jsonrpc":"2.0","id":1e400,"method":"echo"}`, "\x00\xff\n{", `{"id":[],"method":"x"}`,
		`{"jsonrpc":"2.0","id":"a","method":"echo","params":{"text":"x"}}` + "\n" + `{"jsonrpc":"2.0","id":"a","method":"echo"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\xfe\",\"method\":\"echo\"}", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"e\xffcho\"}",
		"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"text\":\"\xc3\"}},{\"jsonrpc\":\"2.0\",\"id\":\"\u00ff\",\"method\":\"raw\"}]",
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"echo"}`, `{"jsonrpc":"2.0","\u0069d":"\"\\","method":"get_data"}`,
	} {
		f.Add([]byte(seed))
	}
	methods := map[string]Method{
		"echo": func(_ context.Context, p json.RawMessage) (any, error) {
			var v struct {
				Text string `json:"text" rpc:"required"`
			}
			if err := DecodeParams(p, &v); err != nil {
				return nil, err
			}
			return v.Text, nil
		},
		"get_data": func(context.Context, json.RawMessage) (any, error) { return []any{"hello", 5}, nil },
		// A raw result repeats what it was given, invalid bytes and all:
		// the output must still be valid UTF-8.
		"raw": func(_ context.Context, p json.RawMessage) (any, error) {
			if p == nil {
				return nil, nil
			}
			return p, nil
		},
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		var out bytes.Buffer
		s := NewServer(methods, Options{Logger: zerolog.Nop(), MaxLineBytes: 4096})
		if err := s.Serve(context.Background(), bytes.NewReader(input), &out); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		text := out.String()
		if text != "" && !strings.HasSuffix(text, "\n") {
			t.Fatalf("output ends in a half line: %q", text)
		}
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			if line == "" {
				continue
			}
			if !utf8.ValidString(line) || !json.Valid([]byte(line)) {
				t.Fatalf("an output line is not valid UTF-8 JSON: %q", line)
			}
			var batch []json.RawMessage
			if json.Unmarshal([]byte(line), &batch) == nil {
				if len(batch) == 0 {
					t.Fatalf("an empty batch reply: %q", line)
				}
				for _, r := range batch {
					checkResponse(t, r)
				}
				continue
			}
			checkResponse(t, json.RawMessage(line))
		}
	})
}

func checkResponse(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var fields map[string]json.RawMessage // presence matters: "id": null is an id
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("not a response object: %q", raw)
	}
	_, hasID := fields["id"]
	_, hasResult := fields["result"]
	errRaw, hasError := fields["error"]
	if string(fields["jsonrpc"]) != `"2.0"` || !hasID || hasResult == hasError || len(fields) != 3 {
		t.Fatalf("not a JSON-RPC 2.0 response: %q", raw)
	}
	if hasError {
		var e struct {
			Code    json.Number `json:"code"`
			Message string      `json:"message"`
		}
		dec := json.NewDecoder(bytes.NewReader(errRaw))
		dec.UseNumber()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("bad error object: %q", raw)
		}
		if _, err := e.Code.Int64(); err != nil || e.Message == "" {
			t.Fatalf("error without an integer code and a message: %q", raw)
		}
	}
}

// FuzzDecodeParams: any params decode into a struct or fail as InvalidParams.
func FuzzDecodeParams(f *testing.F) {
	for _, seed := range []string{`{}`, `null`, `[1]`, `{"image":"x","all":true}`, `{"image":5}`, `{"x":1}`, `{"image":"x"} {}`, `"s"`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p struct {
			Image string            `json:"image" rpc:"required"`
			All   bool              `json:"all"`
			Env   map[string]string `json:"env"`
			N     *int              `json:"n"`
		}
		err := DecodeParams(raw, &p)
		if err == nil {
			if p.Image == "" {
				t.Fatalf("accepted %q without the required image", raw)
			}
			return
		}
		if e, ok := err.(*fault.Error); !ok || e.Kind != fault.KindInvalidParams {
			t.Fatalf("%q: %v is not an InvalidParams error", raw, err)
		}
	})
}

// FuzzScanner checks the request scanner against encoding/json: for any
// valid JSON object, readMembers finds the bytes a map decode finds, and
// entries the elements of any valid array.
func FuzzScanner(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"a","params":{"x":[1,"]}",{"y":"\"\\"}]}}`,
		`{ "id" : "\u0069\\\"" , "method":"m" ,"\u0070arams":[ ] }`, `{}`, `{"id":1,"id":2}`, `{"a":{"id":1},"id":-0.5e+3}`,
		`[]`, `[1, "a]", {"b":[2]}, null, true, false, -1.5e3]`, `[[[]],{}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.TrimSpace(data)
		if !json.Valid(data) {
			return
		}
		switch data[0] {
		case '{':
			var want map[string]json.RawMessage
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("valid object %q: %v", data, err)
			}
			got, dup := readMembers(data)
			if dup != "" {
				if _, ok := want[dup]; !ok {
					t.Fatalf("%q: duplicate %q reported, but it is not a member", data, dup)
				}
				return
			}
			for name, found := range map[string][]byte{"jsonrpc": got.version, "id": got.id, "method": got.method, "params": got.params} {
				if w, ok := want[name]; string(w) != string(found) || ok != (found != nil) {
					t.Fatalf("%q: member %s is %q, encoding/json finds %q", data, name, found, w)
				}
			}
			if got.method != nil && got.method[0] == '"' {
				var m string
				json.Unmarshal(got.method, &m)
				if stringValue(got.method) != m {
					t.Fatalf("%q: method %q, encoding/json reads %q", data, stringValue(got.method), m)
				}
			}
		case '[':
			var want []json.RawMessage
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("valid array %q: %v", data, err)
			}
			var got []string
			for e := newEntries(data); ; {
				entry, ok := e.next()
				if !ok {
					break
				}
				got = append(got, string(entry))
			}
			if len(got) != len(want) || countEntries(data) != len(want) {
				t.Fatalf("%q: %d entries, encoding/json finds %d", data, len(got), len(want))
			}
			for i := range got {
				if got[i] != string(want[i]) {
					t.Fatalf("%q: entry %d is %q, encoding/json finds %q", data, i, got[i], want[i])
				}
			}
		}
	})
}
