package rpc

import (
	"bytes"
	"encoding/json"
)

// Marshal encodes v as one line of compact JSON without HTML escaping.
// Every transport encodes replies with it, so that JSON a function wrote
// (a json.RawMessage in a result) reaches the caller as written: json.Marshal
// would rewrite "<", ">" and "&" inside its strings as \u003c and the like.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
