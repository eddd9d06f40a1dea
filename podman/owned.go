package podman

import (
	"context"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
)

// Owned tracks the containers the worker created and has not removed, kills
// and removes them (retrying what Podman refuses for now), and keeps the
// name of a container being removed reserved until it is gone.
type Owned struct {
	client *Client
	log    zerolog.Logger

	mu  sync.Mutex
	ids map[string]bool // id -> auto-remove
	// unremovedIDs are owned containers whose removal failed because
	// Podman was away; the sweep on reconnection removes them.
	unremovedIDs map[string]bool
	// pending holds the names of containers being removed, closed once gone.
	pending  map[string]chan struct{}
	removals sync.WaitGroup
}

func newOwned(c *Client, log zerolog.Logger) *Owned {
	return &Owned{client: c, log: log, ids: map[string]bool{}, unremovedIDs: map[string]bool{}, pending: map[string]chan struct{}{}}
}

// Add records a container the worker created; autoRemove ones are removed
// by Close at the latest.
func (o *Owned) Add(id string, autoRemove bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids[id] = autoRemove
}

// Forget drops a container that is gone or handed over to the caller.
func (o *Owned) Forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.ids, id)
	delete(o.unremovedIDs, id)
}

func (o *Owned) isUnremoved(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.unremovedIDs[id]
}

func (o *Owned) unremoved() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.unremovedIDs)
}

// Count is how many containers the worker owns now.
func (o *Owned) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ids)
}

// AwaitRemoval waits until no container of this name or id is being
// removed: once run has answered, its container is gone for every later
// call, and a caller who reuses a name at once gets no name conflict.
func (o *Owned) AwaitRemoval(ctx context.Context, ref string) error {
	o.mu.Lock()
	ch := o.pending[ref]
	o.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AwaitRemovals waits until every removal under way when it was called
// has ended: calls that list or remove images and containers (ps, rmi,
// prune) then never see a container whose run has answered.
func (o *Owned) AwaitRemovals(ctx context.Context) error {
	o.mu.Lock()
	var chans []chan struct{}
	for _, ch := range o.pending {
		chans = append(chans, ch)
	}
	o.mu.Unlock()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reserve keeps the container's id and name reserved until the returned
// func is called.
func (o *Owned) reserve(id, name string) func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := make(chan struct{})
	keys := []string{id}
	if name != "" {
		keys = append(keys, name)
	}
	for _, k := range keys {
		o.pending[k] = ch
	}
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, k := range keys {
			if o.pending[k] == ch {
				delete(o.pending, k)
			}
		}
		close(ch)
	}
}

// Kill sends SIGKILL regardless of the caller's context (it may be the
// reason for the kill); a container that already exited is fine.
func (o *Owned) Kill(id string) {
	err := o.client.detached(10*time.Second, func(ctx context.Context) error {
		return containers.Kill(ctx, id, new(containers.KillOptions).WithSignal("SIGKILL"))
	})
	switch o.client.KindOf(err) {
	case fault.KindNotFound, fault.KindConflict: // gone, or not running any more
	default:
		if err != nil {
			o.log.Debug().Err(err).Str("container", id).Msg("kill")
		}
	}
}

// RemoveLater removes a container in the background; Close waits for it.
// Until it is gone its name stays reserved (AwaitRemoval).
func (o *Owned) RemoveLater(id, name string) {
	o.removals.Add(1)
	done := o.reserve(id, name)
	go func() {
		defer o.removals.Done()
		defer done()
		o.Remove(id, false)
	}()
}

// Remove kills (when running) and deletes a container, and forgets it
// once Podman no longer has it. When Podman cannot be reached, the
// container is removed as soon as it answers again (Client.sweep), not
// at the worker's exit.
func (o *Owned) Remove(id string, running bool) {
	err := o.client.detached(30*time.Second, func(ctx context.Context) error {
		return o.remove(ctx, id, running)
	})
	switch {
	case err == nil:
	case o.client.KindOf(err) == fault.KindUnavailable:
		o.mu.Lock()
		o.unremovedIDs[id] = true
		o.mu.Unlock()
		o.log.Warn().Err(err).Str("container", id).Msg("Podman is away: the container is removed once it answers again")
		o.client.watchReturn()
	default:
		o.log.Warn().Err(err).Str("container", id).Msg("could not remove a container; it stays listed as owned")
	}
}

// remove deletes a container within ctx. Podman refuses while the
// container is between states, for example while the cleanup process
// conmon starts after the exit still holds it ("container state
// improper"). That passes within moments, so such a refusal is tried
// again until ctx ends. Only Podman's "no such container" counts as
// already removed. Force with timeout 0 kills a running container at once.
func (o *Owned) remove(ctx context.Context, id string, running bool) error {
	if running {
		_ = containers.Kill(ctx, id, new(containers.KillOptions).WithSignal("SIGKILL"))
	}
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := containers.Remove(ctx, id, new(containers.RemoveOptions).WithForce(true).WithVolumes(true).WithTimeout(0))
		if err == nil || o.client.KindOf(err) == fault.KindNotFound {
			o.Forget(id)
			return nil
		}
		if o.client.KindOf(err) != fault.KindConflict {
			return err
		}
		o.log.Debug().Err(err).Str("container", id).Dur("retry_in", wait).Msg("Podman refused the removal for now")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

// Close kills and removes every auto-remove container still there, and
// waits for removals under way. The worker calls it on its way out,
// whatever the way.
func (o *Owned) Close() {
	o.mu.Lock()
	var ids []string
	for id, auto := range o.ids {
		if auto {
			ids = append(ids, id)
		}
	}
	o.mu.Unlock()
	for _, id := range ids {
		o.removals.Add(1)
		go func() {
			defer o.removals.Done()
			o.Remove(id, true)
		}()
	}
	o.removals.Wait()
	o.client.Close()
}
