package handlers

import (
	"bytes"
	"encoding/json"

	"github.com/podman-worker/podman-worker/podman"
)

// maxStdoutDepth is how deeply a function's JSON stdout may nest and still
// be passed as JSON. The reply wraps it in two or three more levels, and
// callers decode it with their own limits (Go's decoder stops at 10000
// levels, Python's json near its recursion limit of 1000): at 512 every
// reply stays decodable. Deeper output is passed as text.
const maxStdoutDepth = 512

// stdoutValue is a run's stdout as the caller receives it: the JSON the
// function wrote, or the text. A cut stdout is always text, even when the
// cut happens to leave valid JSON.
func stdoutValue(out podman.Output) any {
	s := out.Stdout.String()
	if out.Stdout.Cut() {
		return s
	}
	return jsonOrText(s)
}

// jsonOrText returns a function's stdout as the JSON it wrote when it is,
// less surrounding whitespace, exactly one JSON object or array (functions
// print {"statusCode":200,...}), else the text as it is. The JSON is
// validated, never decoded: every number's text (past 2^53, 1.0, -0,
// 1e400), key order, duplicate keys and string escapes reach the caller as
// written, since the transports encode replies with rpc.Marshal, which
// only drops the whitespace between tokens.
func jsonOrText(s string) any {
	t := bytes.TrimSpace([]byte(s))
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') || !json.Valid(t) || depth(t) > maxStdoutDepth {
		return s
	}
	return json.RawMessage(t)
}

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(b []byte) int {
	deepest, level, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			level++
			deepest = max(deepest, level)
		case c == '}' || c == ']':
			level--
		}
	}
	return deepest
}
