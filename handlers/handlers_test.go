package handlers

import (
	"encoding/json"
	"reflect"
	"testing"

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
