package rpc

import (
	"bytes"
	"encoding/json"
)

// members are the top-level members of one request object that JSON-RPC
// 2.0 defines, each the exact bytes sent (nil when absent). Anything else
// in the object is ignored.
type members struct {
	version, id, method, params []byte
}

// readMembers finds the members of obj, a JSON object that json.Valid has
// accepted, in one pass and without copying. dup names a member that
// appears twice (the object is then refused: which id would the reply
// carry?).
//
// This scanner replaces decoding into map[string]json.RawMessage (which
// copies every value and keeps the last of two equal keys) and a struct
// of json.RawMessage fields (encoding/json matches struct fields without
// regard to case, so "ID" and "Method" would be taken for "id" and
// "method"). Since the input is known to be valid JSON, it only has to
// find where each value ends.
func readMembers(obj []byte) (m members, dup string) {
	i := skipSpace(obj, 1)
	for obj[i] != '}' {
		keyEnd := skipString(obj, i)
		key := obj[i+1 : keyEnd-1]
		start := skipSpace(obj, skipSpace(obj, keyEnd)+1) // past the ':'
		end := skipValue(obj, start)
		if slot, name := m.slot(key); slot != nil {
			if *slot != nil {
				return m, name
			}
			*slot = obj[start:end]
		}
		i = skipSpace(obj, end)
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return m, ""
}

// slot returns where the member named key goes, and its name; nil for a
// key that names no request member. Keys are compared after unescaping,
// so "\u0069d" is "id", as any JSON parser reads it.
func (m *members) slot(key []byte) (*[]byte, string) {
	if bytes.IndexByte(key, '\\') >= 0 {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &s) != nil {
			return nil, ""
		}
		key = []byte(s)
	}
	switch string(key) { // compared without a copy
	case "jsonrpc":
		return &m.version, "jsonrpc"
	case "id":
		return &m.id, "id"
	case "method":
		return &m.method, "method"
	case "params":
		return &m.params, "params"
	}
	return nil, ""
}

// stringValue returns the Go string a JSON string literal stands for.
func stringValue(lit []byte) string {
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]) // no escapes: the bytes are the string
	}
	var s string
	_ = json.Unmarshal(lit, &s) // valid: checked with the whole line
	return s
}

// entries reads the elements of a JSON array that json.Valid has
// accepted, one at a time and without copying them.
type entries struct {
	arr []byte
	i   int
}

func newEntries(arr []byte) entries { return entries{arr, skipSpace(arr, 1)} }

func (e *entries) next() ([]byte, bool) {
	if e.arr[e.i] == ']' {
		return nil, false
	}
	end := skipValue(e.arr, e.i)
	entry := e.arr[e.i:end]
	e.i = skipSpace(e.arr, end)
	if e.arr[e.i] == ',' {
		e.i = skipSpace(e.arr, e.i+1)
	}
	return entry, true
}

// countEntries counts the elements of a JSON array that json.Valid has accepted.
func countEntries(arr []byte) int {
	n := 0
	for e := newEntries(arr); ; n++ {
		if _, ok := e.next(); !ok {
			return n
		}
	}
}

// The skip functions find the end of a value in valid JSON, so they
// check nothing: json.Valid has.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string literal at b[i].
// It jumps from quote to quote (a 16 MiB file content is one IndexByte),
// and a quote preceded by an odd run of backslashes is escaped.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		q := j + bytes.IndexByte(b[j:], '"')
		n := 0
		for q-1-n > i && b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
			j++
		}
	default: // a number, true, false or null: up to the next delimiter
		j := i
		for ; j < len(b); j++ {
			switch b[j] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return j
			}
		}
		return j
	}
}
