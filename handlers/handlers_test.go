package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/fault"
)

func TestKeyValues(t *testing.T) {
	tests := []struct {
		in   string
		want keyValues // nil means an error
	}{
		{`{"A":"1","B":""}`, keyValues{"A": "1", "B": ""}},
		{`["A=1","B=x=y","C="]`, keyValues{"A": "1", "B": "x=y", "C": ""}},
		{`null`, keyValues{}},
		{`[]`, keyValues{}},
		{`["A"]`, nil},
		{`["=1"]`, nil},
		{`{"A=B":"1"}`, nil},
		{`{"A":1}`, nil},
		{`"A=1"`, nil},
		{`[1]`, nil},
	}
	for _, tt := range tests {
		var kv keyValues
		err := json.Unmarshal([]byte(tt.in), &kv)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: got %v, want an error", tt.in, kv)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(kv, tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.in, kv, err, tt.want)
		}
	}
}

func TestRender(t *testing.T) {
	v := map[string]any{"Host": map[string]any{"Arch": "amd64"}, "Names": []string{"a", "b"}}
	tests := []struct{ format, want string }{
		{"{{.Host.Arch}}", "amd64"},
		{"{{json .Host}}", `{"Arch":"amd64"}`},
		{"{{upper .Host.Arch}}", "AMD64"},
		{`{{join .Names ","}}`, "a,b"},
		{"json", `{"Host":{"Arch":"amd64"},"Names":["a","b"]}`},
	}
	for _, tt := range tests {
		got, err := render(context.Background(), tt.format, v)
		if err != nil || got != tt.want {
			t.Errorf("render(%q) = %q, %v; want %q", tt.format, got, err, tt.want)
		}
	}
	for _, bad := range []string{"{{.Host.Arch", "{{nofunc .Host}}"} {
		_, err := render(context.Background(), bad, v)
		if e, ok := err.(*fault.Error); !ok || e.Kind != fault.KindInvalidParams {
			t.Errorf("render(%q): got %v, want an InvalidParams error naming format", bad, err)
		}
	}
}

func TestImageID(t *testing.T) {
	for in, want := range map[string]string{"abc": "sha256:abc", "sha256:abc": "sha256:abc", "": ""} {
		if got := imageID(in); got != want {
			t.Errorf("imageID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"name":"svc","username":"bob","password":"s3cret"}`, `{"name":"svc","password":"***","username":"bob"}`},
		{`{"image":"x","env":{"TOKEN":"abc","MODE":"t"}}`, `{"env":{"MODE":"***","TOKEN":"***"},"image":"x"}`},
		{`{"image":"x","env":["TOKEN=abc","BARE"]}`, `{"env":["TOKEN=***","BARE=***"],"image":"x"}`},
		{`{"image":"x","environment":{"K":"v"}}`, `{"environment":{"K":"***"},"image":"x"}`},
		{`{"context":"/c","build_args":["API_KEY=k"]}`, `{"build_args":["API_KEY=***"],"context":"/c"}`},
		{`{"name":"svc","dest_path":"/k","content":"private key"}`, `{"content":"*** (11 bytes)","dest_path":"/k","name":"svc"}`},
		{`[{"password":"p"}]`, `[{"password":"***"}]`},
		// --debug logged argv verbatim: program and count only, at every level.
		{`{"image":"x","command":"echo hi"}`, `{"command":"*** (a command string of 7 bytes)","image":"x"}`},
		{`{"name":"c","command":["login","--password=s3cret","token=abc"]}`, `{"command":"login *** (2 arguments)","name":"c"}`},
		{`{"image":"x","entrypoint":["/app","--key=k"]}`, `{"entrypoint":"/app *** (1 arguments)","image":"x"}`},
		{`{"image":"x","entrypoint":"/app"}`, `{"entrypoint":"*** (a command string of 4 bytes)","image":"x"}`},
	}
	for _, tt := range tests {
		if got := string(Redact("m", json.RawMessage(tt.in))); got != tt.want {
			t.Errorf("Redact(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// A format template comes from the caller: whatever it asks, rendering
// ends quickly with a result or a BadRequest naming "format", and memory
// stays bounded.
func TestRenderIsBounded(t *testing.T) {
	data := struct {
		Big   int64
		Name  string
		Items []string
	}{Big: 60_000_000_000, Name: "x", Items: make([]string, 1000)}
	tests := []struct {
		format string
		want   string // "" means a BadRequest
	}{
		{`{{.Name}}`, "x"},
		{`{{pad .Name 2 1}}`, "  x "},
		{`{{printf "%5s|%-3d|%.2f" .Name 7 1.5}}`, "    x|7  |1.50"},
		{`{{len .Items}} {{range $i, $e := .Items}}{{if eq $i 0}}first{{end}}{{end}}`, "1000 first"},
		{`{{pad "x" 60000000000 0}}`, ""},
		{`{{pad "x" .Big 0}}`, ""},
		{`{{pad "x" -1 0}}`, ""},
		{`{{truncate .Name -1}}`, ""},
		{`{{printf "%0999999999d" 1}}`, ""},
		{`{{printf "%.999999999f" 1.0}}`, ""},
		{`{{printf "%*d" .Big 1}}`, ""}, // fmt takes a width from any integer kind
		{`{{printf "%*d" 60000000 1}}`, ""},
		{`{{printf "%[2]*[1]d" 1 60000000}}`, ""},
		{`{{range .Big}}{{end}}`, ""},
		{`{{range 1000000000000}}{{end}}`, ""},
		{`{{range .Items}}{{range $.Items}}{{range $.Items}}{{end}}{{end}}{{end}}`, ""},
		{`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`, ""},
		{`{{block "b" .}}x{{end}}`, ""},
		{`{{range .Items}}{{range $.Items}}` + strings.Repeat("y", 100) + `{{end}}{{end}}`, ""}, // 100 MB of output
		{strings.Repeat("{{.Name}}", 1000), ""},                                                 // 9 KB of template
	}
	for _, tt := range tests {
		got, err := render(context.Background(), tt.format, data)
		if tt.want != "" {
			if err != nil || got != tt.want {
				t.Errorf("format %.80q: got %q, %v; want %q", tt.format, got, err, tt.want)
			}
			continue
		}
		var rerr *fault.Error
		if !errors.As(err, &rerr) || rerr.Kind != fault.KindInvalidParams || rerr.Fields["field"] != "format" {
			t.Errorf("format %.80q: got %.80q, %v; want a BadRequest naming \"format\"", tt.format, got, err)
		}
	}
}

// Output without newlines goes out in pieces of at most maxProgressLine
// bytes, cut between characters, each but the last marked partial.
func TestProgressSplitsLongLines(t *testing.T) {
	p := &progress{}
	long := strings.Repeat("é", maxProgressLine) // 2 bytes each
	for i := 0; i < len(long); i += 1000 {
		p.Write([]byte(long[i:min(i+1000, len(long))]))
	}
	p.Write([]byte("\nnext\n"))
	got := p.lines()
	if strings.Join(got[:len(got)-1], "") != long || got[len(got)-1] != "next" {
		t.Fatalf("the pieces do not join back to what was written")
	}
	for i, l := range got {
		if len(l) > maxProgressLine || !utf8.ValidString(l) {
			t.Errorf("piece %d: %d bytes, valid UTF-8 %v", i, len(l), utf8.ValidString(l))
		}
	}
	// 128 KiB: one full piece, then the rest, which the newline ends.
	if len(got) != 3 {
		t.Errorf("got %d lines, want 2 pieces and the next line", len(got))
	}
}

func TestContainerKey(t *testing.T) {
	tests := []struct{ method, params, want string }{
		{"run", `{"image":"x","name":"fn"}`, "container:fn"},
		{"run", `{"image":"x"}`, ""},
		{"create", `{"image":"x","name":"svc"}`, "container:svc"},
		{"rm", `{"container":"svc"}`, "container:svc"},
		{"rm", `{"name":"svc","force":true}`, "container:svc"},
		{"kill", `{"container":"svc"}`, "container:svc"},
		{"add_file", `{"dest_path":"/a","content":"{\"name\":\"decoy\"}","name":"svc"}`, "container:svc"},
		{"exec", `{"name":7}`, ""},
		{"ping", `{"name":"svc"}`, ""},
		{"images", ``, ""},
	}
	for _, tt := range tests {
		if got := ContainerKey(tt.method, json.RawMessage(tt.params)); got != tt.want {
			t.Errorf("ContainerKey(%s, %s) = %q, want %q", tt.method, tt.params, got, tt.want)
		}
	}
}

// The red team's template: two nested ranges over 8193 items and 150
// {{if json $}} in the inner one, 3 KB in all. It never answered and
// burned a core past the call's timeout. Rendering has a budget now: it
// ends with a BadRequest naming format, in well under the call timeouts
// callers use, and a cancelled context ends it at once. render runs on
// the caller's goroutine, so nothing keeps running after it returns.
func TestRenderHasABudget(t *testing.T) {
	data := struct{ Items []string }{Items: make([]string, 200)}
	for i := range data.Items {
		data.Items[i] = strings.Repeat("y", 20)
	}
	list := `split (pad "x" 4096 4096) ""`
	burner := `{{range ` + list + `}}{{range ` + list + `}}` + strings.Repeat(`{{if json $}}{{end}}`, 150) + `{{end}}{{end}}`
	empty := `{{range ` + list + `}}{{range ` + list + `}}{{end}}{{end}}`
	printer := `{{range ` + list + `}}{{range ` + list + `}}{{if print $}}{{end}}{{end}}{{end}}`
	if len(burner) > maxFormatBytes {
		t.Fatalf("the test template is %d bytes", len(burner))
	}
	for name, format := range map[string]string{"json in nested ranges": burner, "empty nested ranges": empty, "print in nested ranges": printer} {
		start := time.Now()
		_, err := render(context.Background(), format, data)
		var rerr *fault.Error
		if !errors.As(err, &rerr) || rerr.Kind != fault.KindInvalidParams || rerr.Fields["field"] != "format" || time.Since(start) > maxRenderTime+time.Second {
			t.Errorf("%s: %v after %v; want a BadRequest naming format within %v", name, err, time.Since(start), maxRenderTime)
		}
		t.Logf("%s: %v in %v", name, err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := render(ctx, burner, data); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("with a 100 ms deadline: %v after %v; want the deadline error promptly", err, time.Since(start))
	}
	// A template within the budget still renders.
	if got, err := render(context.Background(), `{{range .Items}}{{range $.Items}}{{end}}{{end}}{{len .Items}}`, data); err != nil || got != "200" {
		t.Errorf("40,000 empty iterations: %q, %v; want 200", got, err)
	}
}

// '*' takes a width from any integer kind: printf "%*d" with an int64 of
// 900000 rendered 900,000 bytes.
func TestPrintfWidthsOfEveryIntegerKind(t *testing.T) {
	for _, w := range []any{int64(900000), int32(900000), uint(900000), uint64(900000), uint32(5000), int16(5000), int64(-900000)} {
		data := struct{ W any }{w}
		got, err := render(context.Background(), `{{printf "%*d" .W 1}}`, data)
		var rerr *fault.Error
		if !errors.As(err, &rerr) || rerr.Fields["field"] != "format" {
			t.Errorf("width %T(%v): %d bytes, %v; want a BadRequest naming format", w, w, len(got), err)
		}
	}
	if got, err := render(context.Background(), `{{printf "%*d" .W 1}}`, struct{ W int64 }{3}); err != nil || got != "  1" {
		t.Errorf("width int64(3): %q, %v", got, err)
	}
}
