package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/rpc"
)

// replyStdout encodes stdout's value the way every transport does (inside
// an envelope, with rpc.Marshal) and reads the raw text of "stdout" back.
func replyStdout(t testing.TB, stdout string) (json.RawMessage, bool) {
	t.Helper()
	v := jsonOrText(stdout)
	line, err := rpc.Marshal(map[string]any{"result": map[string]any{"stdout": v, "exit_code": 0}})
	if err != nil {
		t.Fatalf("encoding a reply with stdout %q: %v", stdout, err)
	}
	var reply struct {
		Result struct {
			Stdout json.RawMessage `json:"stdout"`
		} `json:"result"`
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		t.Fatalf("the reply %s does not decode: %v", line, err)
	}
	_, isJSON := v.(json.RawMessage)
	return reply.Result.Stdout, isJSON
}

func TestStdoutJSONReachesTheCallerAsWritten(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		stdout string
		want   string // the reply's raw "stdout"
		isJSON bool
	}{
		{`{"z":1,"id":12345678901234567890,"f":1.0,"big":9007199254740993}` + "\n",
			`{"z":1,"id":12345678901234567890,"f":1.0,"big":9007199254740993}`, true},
		{`[18446744073709551615, 2.50, -0, 1e400, 1e-400]`, `[18446744073709551615,2.50,-0,1e400,1e-400]`, true},
		{`{"s":"\ud83d\ude00 <b>&amp;</b> \u2028 é"}`, `{"s":"\ud83d\ude00 <b>&amp;</b> \u2028 é"}`, true},
		{`{"dup":1,"dup":2}`, `{"dup":1,"dup":2}`, true},
		{"  \n\t{ \"a\" : [ 1 , 2 ] }\r\n", `{"a":[1,2]}`, true},
		{deep(maxStdoutDepth), deep(maxStdoutDepth), true},
		// Not exactly one object or array: text.
		{deep(maxStdoutDepth + 1), mustQuote(deep(maxStdoutDepth + 1)), false},
		{`{"a":1}{"b":2}`, `"{\"a\":1}{\"b\":2}"`, false},
		{`{"a":1,`, `"{\"a\":1,"`, false},
		{"1e400\n", `"1e400\n"`, false},
		{`"a string"`, `"\"a string\""`, false},
		{"hello\n", `"hello\n"`, false},
		{"", `""`, false},
	}
	for _, c := range cases {
		got, isJSON := replyStdout(t, c.stdout)
		name := c.stdout
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		if string(got) != c.want || isJSON != c.isJSON {
			t.Errorf("stdout %q: the reply carried %s (JSON: %v), want %s (JSON: %v)", name, got, isJSON, c.want, c.isJSON)
		}
	}
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// FuzzStdoutJSON checks that any stdout that is valid JSON (an object or
// an array) comes back equal token by token, every number's text included,
// and that anything else comes back as the same text.
func FuzzStdoutJSON(f *testing.F) {
	for _, s := range []string{
		`{"z":1,"id":12345678901234567890,"f":1.0,"big":9007199254740993}`,
		`[18446744073709551615,2.50,-0,1e400,1e-400]`,
		`{"s":"\ud83d\ude00\u0000<>&\u2028"}`,
		`[[[{"a":[]}]]]`, `{"a":1} x`, "plain text\n", `[1,2`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stdout string) {
		got, isJSON := replyStdout(t, stdout)
		if !isJSON {
			var text string
			if err := json.Unmarshal(got, &text); err != nil {
				t.Fatalf("stdout %q came back as %s, neither JSON nor text", stdout, got)
			}
			if utf8.ValidString(stdout) && text != stdout {
				t.Fatalf("stdout %q came back as the text %q", stdout, text)
			}
			trimmed := strings.TrimSpace(stdout)
			if json.Valid([]byte(trimmed)) && (strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[")) && depth([]byte(trimmed)) <= maxStdoutDepth {
				t.Fatalf("stdout %q is one JSON object or array but came back as text", stdout)
			}
			return
		}
		want, gotTokens := tokens(t, []byte(stdout)), tokens(t, got)
		if len(want) != len(gotTokens) {
			t.Fatalf("stdout %q: %d tokens came back as %d (%s)", stdout, len(want), len(gotTokens), got)
		}
		for i := range want {
			if want[i] != gotTokens[i] {
				t.Fatalf("stdout %q: token %d was %q, came back as %q", stdout, i, want[i], gotTokens[i])
			}
		}
	})
}

// tokens lists a JSON text's tokens as text: numbers as written, strings
// decoded, delimiters as themselves.
func tokens(t *testing.T, b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading %s: %v", b, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			out = append(out, "delim:"+v.String())
		case json.Number:
			out = append(out, "number:"+v.String())
		case string:
			out = append(out, "string:"+v)
		default:
			out = append(out, "literal:"+mustQuote(strings.TrimSpace(strings.Trim(string(must(json.Marshal(v))), `"`))))
		}
	}
}

func must(b []byte, _ error) []byte { return b }
