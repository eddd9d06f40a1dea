package containerfile

import (
	"bytes"
	"strings"
	"unicode"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Podman 4.3.1 reads the file with imagebuilder's older copy of Docker's
// parser, and the two parsers do not cut a file into instructions the
// same way. Where they disagree, Podman can run an instruction this
// checker never saw: with "ADD a b \\" (an escaped backslash) buildkit ends
// the line and reads the next one, "COPY http://host/x /s", as a COPY,
// while the old parser joins them into one ADD that fetches the URL. So
// the checker works out the old parser's instruction lines too and
// refuses a file on which they differ.

// oldEscape is the escape character the old parser uses for src: it reads
// "# escape=" on the first line only (any other line, even "# syntax=",
// ends its directives), and takes the first character after "=".
func oldEscape(src []byte) rune {
	first, _, _ := bytes.Cut(src, []byte("\n"))
	first = bytes.TrimPrefix(first, []byte("\xEF\xBB\xBF"))
	s := strings.ToLower(strings.TrimLeftFunc(string(first), unicode.IsSpace))
	s, ok := strings.CutPrefix(s, "#")
	if !ok {
		return '\\'
	}
	s, ok = strings.CutPrefix(strings.TrimLeft(s, " \t"), "escape")
	if !ok {
		return '\\'
	}
	s, ok = strings.CutPrefix(strings.TrimLeft(s, " \t"), "=")
	s = strings.TrimLeft(s, " \t")
	if !ok || s == "" || s[0] == '\r' {
		return '\\'
	}
	return rune(s[0])
}

// span is an instruction's first and last line, 1-based.
type span struct{ start, end int }

// oldSpans cuts src into instructions as the old parser does: lines split
// on "\n" with one "\r" dropped, a line ending in the escape character
// (and blanks) continues, and comment or blank lines inside a
// continuation are skipped.
func oldSpans(src []byte, escape rune) []span {
	text := strings.TrimSuffix(string(bytes.TrimPrefix(src, []byte("\xEF\xBB\xBF"))), "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	continues := func(l string) (string, bool) {
		t := strings.TrimRight(l, " \t")
		if strings.HasSuffix(t, string(escape)) {
			return strings.TrimSuffix(t, string(escape)), true
		}
		return l, false
	}
	comment := func(l string) bool { return strings.HasPrefix(l, "#") }
	var spans []span
	for i := 0; i < len(lines); i++ {
		l := strings.TrimLeftFunc(lines[i], unicode.IsSpace)
		if comment(l) {
			l = ""
		}
		start := i + 1
		l, more := continues(l)
		if !more && l == "" {
			continue
		}
		for more && i+1 < len(lines) {
			i++
			next := strings.TrimLeftFunc(lines[i], unicode.IsSpace)
			if next == "" || comment(next) {
				continue
			}
			_, more = continues(lines[i])
		}
		spans = append(spans, span{start, i + 1})
	}
	return spans
}

// sameLines says where the old parser would cut src differently from
// buildkit's result res, as a line number, or 0 when they agree. It is
// only meaningful for files without heredocs, which are refused anyway.
func sameLines(src []byte, res *parser.Result) int {
	if oldEscape(src) != res.EscapeToken {
		return 1
	}
	if i := bytes.IndexByte(src, '\r'); i >= 0 {
		// One "\r" before "\n" is a CRLF line end to both parsers; any
		// other is dropped by buildkit and kept by the old parser.
		for j := i; j < len(src); j++ {
			if src[j] == '\r' && (j+1 == len(src) || src[j+1] != '\n') {
				return 1 + bytes.Count(src[:j], []byte("\n"))
			}
		}
	}
	old := oldSpans(src, res.EscapeToken)
	for i, n := range res.AST.Children {
		if i >= len(old) {
			return n.StartLine
		}
		if old[i] != (span{n.StartLine, n.EndLine}) {
			return min(old[i].start, n.StartLine)
		}
	}
	if len(old) > len(res.AST.Children) {
		return old[len(res.AST.Children)].start
	}
	return 0
}
