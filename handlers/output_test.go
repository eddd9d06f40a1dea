package handlers

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// What a streaming run's writes become as run.output notifications: each
// case is the writes the function's output arrived in, and the
// notifications that must go out, in order.
func TestOutputStreamPieces(t *testing.T) {
	b64 := func(s string) string { return "b64:" + base64.StdEncoding.EncodeToString([]byte(s)) }
	big := strings.Repeat("é", maxOutputPiece) // 2 bytes each: cut between characters
	cases := []struct {
		name   string
		max    int
		writes []string
		want   []string
	}{
		{"text as written", 100, []string{"one\n", "two\n"}, []string{"one\n", "two\n"}},
		{"a character split across writes waits for its end", 100, []string{"caf\xc3", "\xa9!"}, []string{"caf", "é!"}},
		{"bytes that are not UTF-8 go as base64, text stays text", 100, []string{"ok \xff\xfe then"}, []string{"ok ", b64("\xff\xfe"), " then"}},
		{"an incomplete character at the end is sent at flush", 100, []string{"end\xe2\x82"}, []string{"end", b64("\xe2\x82")}},
		{"past the cap: the part within it, then the cut", 5, []string{"abc", "defgh", "more"}, []string{"abc", "de", "<truncated>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			o := newOutputStream(func(p outputParams) {
				switch {
				case p.Truncated:
					got = append(got, "<truncated>")
				case p.Encoding == "base64":
					got = append(got, "b64:"+p.Data)
				default:
					got = append(got, p.Data)
				}
			}, "stdout", c.max)
			for _, w := range c.writes {
				o.write([]byte(w))
			}
			o.flush()
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("wrote %q: sent %q, want %q", c.writes, got, c.want)
			}
		})
	}
	t.Run("long output in pieces of at most 16 KiB, each whole characters", func(t *testing.T) {
		var pieces []string
		o := newOutputStream(func(p outputParams) { pieces = append(pieces, p.Data) }, "stdout", 1<<30)
		o.write([]byte(big))
		o.flush()
		if strings.Join(pieces, "") != big {
			t.Fatal("the pieces do not add up to the output")
		}
		for i, p := range pieces {
			if len(p) > maxOutputPiece || !utf8.ValidString(p) {
				t.Errorf("piece %d: %d bytes, valid UTF-8 %v", i, len(p), utf8.ValidString(p))
			}
		}
	})
}
