package podman

import (
	"context"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// AwaitExit waits for the end of a container's output (ended, from
// Attach), then for Podman to see the process gone, polling inspect (a few
// ms each) with a growing interval: the state usually settles within one
// or two polls, and a process that closed its output but goes on running
// is polled until ctx ends.
func (c *Client) AwaitExit(ctx context.Context, id string, ended <-chan struct{}) (*define.InspectContainerState, error) {
	select {
	case <-ended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	interval := 2 * time.Millisecond
	for {
		data, err := containers.Inspect(ctx, id, nil)
		if err != nil {
			return nil, err
		}
		if st := data.State; st != nil && (st.Status == "exited" || st.Status == "stopped") {
			return st, nil
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		interval = min(interval*2, 50*time.Millisecond)
	}
}

// State reads a container's state for a result; "unknown" if it vanished.
// Podman says "stopped" once the process is gone and "exited" once its
// cleanup process has run, tens of milliseconds later: both mean the
// process ended, and callers cannot act on the difference, so both read
// "exited".
func (c *Client) State(ctx context.Context, nameOrID string) string {
	data, err := containers.Inspect(ctx, nameOrID, nil)
	if err != nil || data.State == nil {
		return "unknown"
	}
	return PublicState(data.State.Status)
}

// PublicState is Podman's state as callers see it (see State).
func PublicState(s string) string {
	if s == "stopped" {
		return "exited"
	}
	return s
}

// settleTime is how long StartedState lets a command that ends at once
// (true, a failed exec) end before it answers.
const settleTime = 50 * time.Millisecond

// StartedState is a just-started container's state as Podman has it once
// a command that ends at once has ended: read at once, `true` still reads
// "running". A container that goes on running costs settleTime more.
func (c *Client) StartedState(ctx context.Context, id string) string {
	wctx, cancel := context.WithTimeout(ctx, settleTime)
	defer cancel()
	_, _ = containers.Wait(wctx, id, new(containers.WaitOptions).WithCondition([]define.ContainerStatus{define.ContainerStateStopped, define.ContainerStateExited}))
	return c.State(ctx, id)
}
