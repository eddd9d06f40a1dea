package handlers

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Redact returns params fit for a debug log: every value that may be a
// secret is replaced, whatever the method. Passwords go entirely, the
// values of environment variables and build args go (their names stay, as
// they help debugging), and file contents become their size.
func Redact(_ string, params json.RawMessage) json.RawMessage {
	if len(params) == 0 {
		return params
	}
	var v any
	if err := json.Unmarshal(params, &v); err != nil {
		return json.RawMessage(`"<unparsable params>"`)
	}
	out, err := json.Marshal(redact("", v))
	if err != nil {
		return json.RawMessage(`"<unprintable params>"`)
	}
	return out
}

const hidden = "***"

func redact(key string, v any) any {
	switch key {
	case "password", "token":
		return hidden
	case "content":
		if s, ok := v.(string); ok {
			return fmt.Sprintf("*** (%d bytes)", len(s))
		}
		return hidden
	case "env", "environment", "build_args":
		return redactKeyValues(v)
	case "command", "entrypoint", "cmd", "args":
		return redactArgv(v)
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = redact(k, e)
		}
	case []any:
		for i, e := range x {
			x[i] = redact("", e)
		}
	}
	return v
}

// redactKeyValues keeps the names of {"K": "V"} or ["K=V"] and hides the values.
func redactKeyValues(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k := range x {
			x[k] = hidden
		}
		return x
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				name, _, _ := strings.Cut(s, "=")
				x[i] = name + "=" + hidden
			} else {
				x[i] = hidden
			}
		}
		return x
	}
	return hidden
}

// redactArgv keeps the program and the number of arguments of a command:
// arguments carry secrets (--password=..., token=...) as often as env does.
// A command string keeps only its length.
func redactArgv(v any) any {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("*** (a command string of %d bytes)", len(x))
	case []any:
		if len(x) == 0 {
			return x
		}
		prog, _ := x[0].(string)
		return fmt.Sprintf("%s *** (%d arguments)", prog, len(x)-1)
	}
	return hidden
}
