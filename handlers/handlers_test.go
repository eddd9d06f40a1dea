package handlers

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/rpc"
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
		got, err := render(tt.format, v)
		if err != nil || got != tt.want {
			t.Errorf("render(%q) = %q, %v; want %q", tt.format, got, err, tt.want)
		}
	}
	for _, bad := range []string{"{{.Host.Arch", "{{nofunc .Host}}"} {
		_, err := render(bad, v)
		if e, ok := err.(*rpc.Error); !ok || e.Kind != rpc.KindInvalidParams {
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
		{`{"image":"x","command":"echo hi"}`, `{"command":"echo hi","image":"x"}`},
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
		{`{{printf "%*d" .Big 1}}`, "%!(BADWIDTH)1"}, // fmt takes only an int as width
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
		got, err := render(tt.format, data)
		if tt.want != "" {
			if err != nil || got != tt.want {
				t.Errorf("format %.80q: got %q, %v; want %q", tt.format, got, err, tt.want)
			}
			continue
		}
		var rerr *rpc.Error
		if !errors.As(err, &rerr) || rerr.Kind != rpc.KindInvalidParams || rerr.Fields["field"] != "format" {
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
