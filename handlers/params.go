package handlers

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/podman-worker/podman-worker/fault"
)

// keyValues is a KEY=VALUE list as the seed CLI takes it (--build-arg,
// --env), accepted as a JSON object {"K": "V"} or an array ["K=V"].
type keyValues map[string]string

func (kv *keyValues) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	out := keyValues{}
	switch {
	case bytes.Equal(data, []byte("null")):
	case len(data) > 0 && data[0] == '{':
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			return fault.Errorf(fault.KindInvalidParams, "an object of \"KEY\": \"value\" strings is expected: %v", err)
		}
		for k, v := range m {
			if k == "" || strings.Contains(k, "=") {
				return fault.Errorf(fault.KindInvalidParams, "key %q must be non-empty and without '='", k)
			}
			out[k] = v
		}
	default:
		var list []string
		if err := json.Unmarshal(data, &list); err != nil {
			return fault.Errorf(fault.KindInvalidParams, "an object {\"KEY\": \"value\"} or an array [\"KEY=value\"] is expected")
		}
		for _, item := range list {
			k, v, ok := strings.Cut(item, "=")
			if !ok || k == "" {
				return fault.Errorf(fault.KindInvalidParams, "%q is not of the form KEY=VALUE", item)
			}
			out[k] = v
		}
	}
	*kv = out
	return nil
}

// commandLine is a command as callers send it: a string runs under
// /bin/sh -c (shell features wanted), an array of strings is the argv itself
// (no shell, so nothing in it is ever interpreted).
type commandLine []string

func (c *commandLine) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil // left empty: `rpc:"required"` reports it
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			return fault.Errorf(fault.KindInvalidParams, "the command string is empty")
		}
		*c = commandLine{"/bin/sh", "-c", s}
	case len(data) > 0 && data[0] == '[':
		var argv []string
		if err := json.Unmarshal(data, &argv); err != nil {
			return fault.Errorf(fault.KindInvalidParams, "an array of strings is expected")
		}
		if len(argv) == 0 || argv[0] == "" {
			return fault.Errorf(fault.KindInvalidParams, "the argv array needs a non-empty program name first")
		}
		*c = argv
	default:
		return fault.Errorf(fault.KindInvalidParams, "a string (run by /bin/sh -c) or an array of strings (argv) is expected")
	}
	if len(*c) > MaxArgs {
		return fault.Errorf(fault.KindInvalidParams, "the command has %d arguments, above this worker's ceiling of %d", len(*c), MaxArgs)
	}
	size := 0
	for _, arg := range *c {
		if size += len(arg) + 1; size > MaxSpecBytes {
			return fault.Errorf(fault.KindInvalidParams, "the command holds more than this worker's ceiling of %d bytes", MaxSpecBytes)
		}
		// The kernel's argv is NUL-terminated: such an argument cannot be passed.
		if strings.ContainsRune(arg, 0) {
			return fault.Errorf(fault.KindInvalidParams, "the command contains a NUL byte")
		}
	}
	return nil
}
