package handlers

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/podman-worker/podman-worker/rpc"
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
			return rpc.Errorf(rpc.KindInvalidParams, "an object of \"KEY\": \"value\" strings is expected: %v", err)
		}
		for k, v := range m {
			if k == "" || strings.Contains(k, "=") {
				return rpc.Errorf(rpc.KindInvalidParams, "key %q must be non-empty and without '='", k)
			}
			out[k] = v
		}
	default:
		var list []string
		if err := json.Unmarshal(data, &list); err != nil {
			return rpc.Errorf(rpc.KindInvalidParams, "an object {\"KEY\": \"value\"} or an array [\"KEY=value\"] is expected")
		}
		for _, item := range list {
			k, v, ok := strings.Cut(item, "=")
			if !ok || k == "" {
				return rpc.Errorf(rpc.KindInvalidParams, "%q is not of the form KEY=VALUE", item)
			}
			out[k] = v
		}
	}
	*kv = out
	return nil
}
