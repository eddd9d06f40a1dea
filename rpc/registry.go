package rpc

import (
	"container/list"
	"context"
	"encoding/json"
	"sync"
	"time"
)

// registry tracks messages from the moment their line is read until they
// are answered (calls) or dispatched (notifications). The library only
// ever sees an internal id; the registry keeps everything else: the
// caller's id, the method and the params exactly as sent. It also refuses
// a second call with an id still in flight (the caller could not tell the
// two replies apart), and finds the call that a $/cancelRequest names.
type registry struct {
	mu    sync.Mutex
	next  uint64
	byID  map[uint64]*call
	byKey map[string]uint64
}

// call is one request from the moment it is read until it is answered.
type call struct {
	internal uint64          // the id the library sees
	id       json.RawMessage // the caller's id, byte for byte; nil for a notification
	key      string
	name     string          // the method's name, as the caller spelt it
	params   json.RawMessage // exactly as sent; nil when absent
	batch    *batch

	// Set when the call is dispatched.
	method Method
	start  time.Time
	ctx    context.Context
	cancel context.CancelCauseFunc

	// Set while it waits for a worker (pool.mu guards them).
	queued  *list.Element
	unwatch func() bool // stops the watch that answers it if cancelled while it waits
}

// notif reports whether the message is a notification, which is never answered.
func (c *call) notif() bool { return c.id == nil }

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

// add registers c under a fresh internal id; dup reports that a call
// with c's id is still in flight, and then nothing is registered.
// Notifications have no id and are never duplicates.
func (r *registry) add(c *call) (internal uint64, dup bool) {
	if !c.notif() {
		c.key = idKey(c.id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[c.key]; ok && !c.notif() {
		return 0, true
	}
	r.next++
	internal = r.next
	c.internal = internal
	r.byID[internal] = c
	if !c.notif() {
		r.byKey[c.key] = internal
		if c.batch != nil {
			c.batch.mu.Lock()
			c.batch.pending++
			c.batch.mu.Unlock()
		}
	}
	return internal, false
}

// get returns the message registered under internal, or nil.
func (r *registry) get(internal uint64) *call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[internal]
}

// finish removes a message once it is being answered (or, for a
// notification, once it is done); nil means it is unknown or already
// answered.
func (r *registry) finish(internal uint64) *call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.byID[internal]
	if c == nil {
		return nil
	}
	delete(r.byID, internal)
	if !c.notif() {
		delete(r.byKey, c.key)
	}
	return c
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
