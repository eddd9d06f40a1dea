package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/rpc"
)

// The seed's envelope:
//
//	{"success": true, "<key>": <result>, "timestamp": "<ISO-8601>"}
//	{"success": false, "error": {"message", "code", "type"}, "timestamp"}
//
// where code is the HTTP status. Keys come out in that order.

// apiError is an error as the API answers it.
type apiError struct {
	status  int
	typ     string
	message string
	// fields are the worker's error data (field, container, path,
	// socket), added to the error object after message, code and type.
	fields map[string]any
}

func newError(status int, typ, message string) *apiError {
	return &apiError{status: status, typ: typ, message: message}
}

// fromCall turns a method's error into the API's: the status and type are
// the error kind's own (rpc's one table), never guessed from the message.
func fromCall(err error) *apiError {
	e := fault.As(err)
	status := rpc.Status(e.Kind)
	switch {
	case status == 499:
		// Cancelled: a client that went away reads nothing, so whoever
		// reads this was cut off by the worker's shutdown.
		status = http.StatusServiceUnavailable
	case status < 400 || status > 599:
		status = http.StatusInternalServerError
	}
	return &apiError{status: status, typ: rpc.Type(e.Kind), message: e.Error(), fields: e.Fields}
}

// timestamp is the seed's datetime.utcnow().isoformat(), with the zone
// said explicitly.
func timestamp() string {
	return time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// writeJSON sends body with status. Every answer, errors included, is JSON.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeSuccess answers {"success": true, key: result, "timestamp"}.
func writeSuccess(w http.ResponseWriter, status int, key string, result any) {
	raw, err := rpc.Marshal(result)
	if err != nil {
		writeError(w, newError(http.StatusInternalServerError, "InternalError", "internal error: encoding the result: "+err.Error()))
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"success":true,`)
	writeKey(&b, key)
	b.Write(raw)
	b.WriteString(`,"timestamp":`)
	writeString(&b, timestamp())
	b.WriteString("}\n")
	writeJSON(w, status, b.Bytes())
}

// writeError answers {"success": false, "error": {...}, "timestamp"}, with
// extra top-level members (health's details) when given.
func writeError(w http.ResponseWriter, e *apiError, extra ...member) {
	var b bytes.Buffer
	b.WriteString(`{"success":false,"error":{"message":`)
	writeString(&b, e.message)
	b.WriteString(`,"code":`)
	raw, _ := json.Marshal(e.status)
	b.Write(raw)
	b.WriteString(`,"type":`)
	writeString(&b, e.typ)
	keys := make([]string, 0, len(e.fields))
	for k := range e.fields {
		if k != "message" && k != "code" && k != "type" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw, err := rpc.Marshal(e.fields[k])
		if err != nil {
			continue
		}
		b.WriteByte(',')
		writeKey(&b, k)
		b.Write(raw)
	}
	b.WriteString("},")
	for _, m := range extra {
		raw, err := rpc.Marshal(m.value)
		if err != nil {
			continue
		}
		writeKey(&b, m.key)
		b.Write(raw)
		b.WriteByte(',')
	}
	b.WriteString(`"timestamp":`)
	writeString(&b, timestamp())
	b.WriteString("}\n")
	writeJSON(w, e.status, b.Bytes())
}

type member struct {
	key   string
	value any
}

func writeKey(b *bytes.Buffer, key string) {
	writeString(b, key)
	b.WriteByte(':')
}

func writeString(b *bytes.Buffer, s string) {
	raw, _ := json.Marshal(s)
	b.Write(raw)
}
