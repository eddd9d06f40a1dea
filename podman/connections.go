package podman

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/podman-worker/podman-worker/fault"
)

// Connections are the Podman services a worker talks to, each by its name
// and through its own Client: its own warm connection, reconnection,
// owned containers and sweep, so that one service being away never delays
// calls to another. A call names the one it wants; calls that name none go
// to the default. Choosing among them is the caller's decision.
type Connections struct {
	def    string
	byName map[string]*Client
	names  []string // sorted
}

// NewConnections groups clients, each under its Name; def names the
// default. Names must be unique.
func NewConnections(def string, clients ...*Client) (*Connections, error) {
	cs := &Connections{def: def, byName: map[string]*Client{}}
	for _, c := range clients {
		if _, dup := cs.byName[c.name]; dup {
			return nil, fmt.Errorf("two connections are named %q: give each its own name", c.name)
		}
		cs.byName[c.name] = c
		cs.names = append(cs.names, c.name)
	}
	if cs.byName[def] == nil {
		return nil, fmt.Errorf("the default connection %q is not among the connections (%s)", def, strings.Join(cs.names, ", "))
	}
	slices.Sort(cs.names)
	return cs, nil
}

// Get answers the connection a call named, or the default for "". An
// unknown name is the caller's error: it names the param and lists the
// connections there are.
func (cs *Connections) Get(name string) (*Client, error) {
	if name == "" {
		return cs.byName[cs.def], nil
	}
	if c := cs.byName[name]; c != nil {
		return c, nil
	}
	return nil, fault.Invalid("connection", "no connection is named %q; the worker's connections are %s, and calls that name none use %s",
		name, strings.Join(cs.names, ", "), cs.def)
}

// Names are the connections' names, sorted.
func (cs *Connections) Names() []string { return slices.Clone(cs.names) }

// Default is the connection of calls that name none.
func (cs *Connections) Default() *Client { return cs.byName[cs.def] }

// All are the connections, sorted by name.
func (cs *Connections) All() []*Client {
	out := make([]*Client, len(cs.names))
	for i, n := range cs.names {
		out[i] = cs.byName[n]
	}
	return out
}

// Statuses pings every connection at once, each within ctx, so that the
// answer takes as long as the slowest one rather than the sum: a host that
// does not answer costs its own deadline and delays no other.
func (cs *Connections) Statuses(ctx context.Context) map[string]Status {
	out := make(map[string]Status, len(cs.names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs.All() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := c.Status(ctx)
			mu.Lock()
			out[c.name] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Close removes what every connection owns (Owned.Close), all at once.
func (cs *Connections) Close() {
	var wg sync.WaitGroup
	for _, c := range cs.All() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Owned.Close()
		}()
	}
	wg.Wait()
}

// Usage counts the calls made through one connection: what a backend that
// spreads calls across hosts reads in metrics.
type Usage struct {
	calls, errors, inFlight atomic.Int64
}

// Begin counts a call that starts; call the returned func when it ends.
func (u *Usage) Begin() (end func(failed bool)) {
	u.inFlight.Add(1)
	return func(failed bool) {
		u.inFlight.Add(-1)
		u.calls.Add(1)
		if failed {
			u.errors.Add(1)
		}
	}
}

// UsageSnapshot is one connection's figures at one moment.
type UsageSnapshot struct {
	Calls           int64 `json:"calls"`
	Errors          int64 `json:"errors"`
	InFlight        int64 `json:"in_flight"`
	OwnedContainers int   `json:"owned_containers"`
}

// UsageSnapshot reads the connection's figures.
func (c *Client) UsageSnapshot() UsageSnapshot {
	return UsageSnapshot{
		Calls: c.Usage.calls.Load(), Errors: c.Usage.errors.Load(), InFlight: c.Usage.inFlight.Load(),
		OwnedContainers: c.Owned.Count(),
	}
}
