package rpc

import (
	"context"
	"encoding/json"
	"sync"
)

// registry tracks calls from the moment their line is read until their
// reply is written. It maps the internal ids the library sees back to the
// caller's ids, refuses a second call with an id still in flight (the
// caller could not tell the two replies apart), and finds the call that a
// $/cancelRequest names.
type registry struct {
	mu    sync.Mutex
	next  uint64
	byID  map[uint64]*call
	byKey map[string]uint64
}

type call struct {
	id     json.RawMessage // the caller's id, byte for byte
	key    string
	batch  *batch
	cancel context.CancelCauseFunc
}

func newRegistry() *registry {
	return &registry{byID: map[uint64]*call{}, byKey: map[string]uint64{}}
}

// idKey identifies an id regardless of JSON spelling of strings, so that
// "a" and "\u0061" are the same call; numbers are compared as written.
func idKey(id json.RawMessage) string {
	var s string
	if json.Unmarshal(id, &s) == nil {
		return "s" + s
	}
	return "n" + string(id)
}

func (r *registry) add(id json.RawMessage, b *batch) (internal uint64, dup bool) {
	key := idKey(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[key]; ok {
		return 0, true
	}
	r.next++
	internal = r.next
	r.byID[internal] = &call{id: append(json.RawMessage(nil), id...), key: key, batch: b}
	r.byKey[key] = internal
	if b != nil {
		b.mu.Lock()
		b.pending++
		b.mu.Unlock()
	}
	return internal, false
}

// finish removes a call once its reply is being written; nil means the
// call is unknown or already answered.
func (r *registry) finish(internal uint64) *call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.byID[internal]
	if c == nil {
		return nil
	}
	delete(r.byID, internal)
	delete(r.byKey, c.key)
	return c
}

// callerID returns the caller's id for an internal id.
func (r *registry) callerID(internal uint64) json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.byID[internal]; c != nil {
		return c.id
	}
	return nil
}

func (r *registry) setCancel(internal uint64, cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.byID[internal]; c != nil {
		c.cancel = cancel
	}
}

// cancel cancels the call the caller knows by id; false if none is in flight.
func (r *registry) cancel(id json.RawMessage, cause error) bool {
	r.mu.Lock()
	internal, ok := r.byKey[idKey(id)]
	var c *call
	if ok {
		c = r.byID[internal]
	}
	r.mu.Unlock()
	if c == nil || c.cancel == nil {
		return false
	}
	c.cancel(cause)
	return true
}
