package podman

import (
	"context"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/rpc"
)

// Owned tracks the containers the worker created and has not removed, kills
// and removes them (retrying what Podman refuses for now), and keeps the
// name of a container being removed reserved until it is gone.
type Owned struct {
	client *Client
	log    zerolog.Logger

	mu  sync.Mutex
	ids map[string]bool // id -> auto-remove
	// pending holds the names of containers being removed, closed once gone.
	pending  map[string]chan struct{}
	removals sync.WaitGroup
}

func newOwned(c *Client, log zerolog.Logger) *Owned {
	return &Owned{client: c, log: log, ids: map[string]bool{}, pending: map[string]chan struct{}{}}
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
}

// Count is how many containers the worker owns now.
func (o *Owned) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ids)
}

// AwaitRemoval waits until no container of this name is being removed, so
// a caller who reuses a name at once does not get a name conflict.
func (o *Owned) AwaitRemoval(ctx context.Context, name string) error {
	o.mu.Lock()
	ch := o.pending[name]
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

// reserve keeps name reserved until the returned func is called.
func (o *Owned) reserve(name string) func() {
	if name == "" {
		return func() {}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := make(chan struct{})
	o.pending[name] = ch
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.pending[name] == ch {
			delete(o.pending, name)
		}
		close(ch)
	}
}

// Kill sends SIGKILL regardless of the caller's context (it may be the
// reason for the kill); a container that already exited is fine.
func (o *Owned) Kill(id string) {
	ctx, cancel := o.client.Background(10 * time.Second)
	defer cancel()
	err := containers.Kill(ctx, id, new(containers.KillOptions).WithSignal("SIGKILL"))
	switch o.client.KindOf(err) {
	case rpc.KindNotFound, rpc.KindConflict: // gone, or not running any more
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
	done := o.reserve(name)
	go func() {
		defer o.removals.Done()
		defer done()
		o.Remove(id)
	}()
}

// Remove deletes a container, and forgets it once Podman no longer has it.
// Podman refuses while the container is between states, for example while
// the cleanup process conmon starts after the exit still holds it
// ("container state improper"). That passes within moments, so such a
// refusal is tried again until the deadline. Only Podman's "no such
// container" counts as already removed.
func (o *Owned) Remove(id string) {
	ctx, cancel := o.client.Background(30 * time.Second)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := containers.Remove(ctx, id, new(containers.RemoveOptions).WithForce(true).WithVolumes(true).WithTimeout(0))
		if err == nil {
			o.Forget(id)
			return
		}
		switch o.client.KindOf(err) {
		case rpc.KindNotFound:
			o.Forget(id)
			return
		case rpc.KindConflict:
			o.log.Debug().Err(err).Str("container", id).Dur("retry_in", wait).Msg("Podman refused the removal for now")
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
			}
		}
		o.log.Warn().Err(err).Str("container", id).Msg("could not remove a container; it stays listed as owned")
		return
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
		o.Kill(id)
		o.RemoveLater(id, "")
	}
	o.removals.Wait()
}
