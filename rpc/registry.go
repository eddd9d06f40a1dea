package rpc

import (
	"container/list"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/podman-worker/podman-worker/fault"
)

// call is one request from the moment it is read (or passed to
// Server.Call) until it is answered.
type call struct {
	// From the request, exactly as sent.
	id     json.RawMessage // the caller's id; nil for a notification and for Server.Call
	key    string          // id as the registry compares it
	name   string          // the method's name
	params json.RawMessage // nil when absent
	weight int             // bytes the request holds while it waits: its own length
	order  string          // Options.Order's key: "" runs free of others

	out   *stream
	batch *batch
	ret   chan outcome // for Server.Call: where the outcome goes

	start  time.Time
	ctx    context.Context
	cancel context.CancelCauseFunc

	// Set while it waits for a worker (pool.mu guards them).
	queued  *list.Element
	unwatch func() bool // stops the watch that answers it if cancelled while it waits
}

type outcome struct {
	result any
	err    *fault.Error
}

// notif reports whether the request is a notification, which is never
// answered on the stream.
func (c *call) notif() bool { return c.id == nil }

// registry holds the calls read from the stream that are not answered
// yet, by the caller's id: it refuses a second call with an id still in
// flight (the caller could not tell the two replies apart), and finds the
// call that a $/cancelRequest names.
type registry struct {
	mu    sync.Mutex
	byKey map[string]*call
}

func newRegistry() *registry {
	return &registry{byKey: map[string]*call{}}
}

// idKey identifies an id regardless of JSON spelling of strings, so that
// "a" and "\u0061" are the same call; numbers are compared as written.
func idKey(id json.RawMessage) string {
	if id[0] == '"' {
		return "s" + stringValue(id)
	}
	return "n" + string(id)
}

// add registers c, which has an id; false when a call with that id is
// still in flight, and then nothing is registered.
func (r *registry) add(c *call) bool {
	c.key = idKey(c.id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byKey[c.key]; dup {
		return false
	}
	r.byKey[c.key] = c
	return true
}

// finish removes c as its reply is written, so that its id may be used
// again as soon as the caller has the reply; false when c was already
// answered.
func (r *registry) finish(c *call) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byKey[c.key] != c {
		return false
	}
	delete(r.byKey, c.key)
	return true
}

// cancel cancels the call the caller knows by id; false if none is in
// flight, or it is not running or waiting yet.
func (r *registry) cancel(id json.RawMessage, cause error) bool {
	r.mu.Lock()
	c := r.byKey[idKey(id)]
	r.mu.Unlock()
	if c == nil || c.cancel == nil {
		return false
	}
	c.cancel(cause)
	return true
}
