package podman

import (
	"context"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// sweepTimeout bounds the clean-up a new connection makes before calls use it.
const sweepTimeout = 30 * time.Second

// sweep runs on every new connection, before any call uses it. It kills
// and removes the containers of this owner whose worker process is dead
// (killed, crashed, or from before a reboot: see Identity.livenessOf), and
// the containers this worker failed to remove while Podman was away. It
// never touches a live worker's containers, nor those of workers on other
// machines, whose liveness it cannot judge, nor containers handed over to
// callers (LabelKept), which outlive a worker by design.
func (c *Client) sweep(conn context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
	defer cancel()
	ctx = mergedContext{Context: ctx, values: conn, client: c}
	filter := map[string][]string{"label": {LabelOwner + "=" + c.Identity.Owner}}
	list, err := containers.List(ctx, new(containers.ListOptions).WithAll(true).WithFilters(filter))
	if err != nil {
		c.log.Warn().Err(err).Msg("listing containers to clear what dead workers left")
		return
	}
	swept, kept := 0, 0
	for _, ctr := range list {
		mine := ctr.Labels[LabelInstance] == c.Identity.Instance
		switch {
		case mine && c.Owned.isUnremoved(ctr.ID):
		case !mine && ctr.Labels[LabelKept] != "true" && c.Identity.livenessOf(ctr.Labels) == dead:
		default:
			if !mine {
				kept++
			}
			continue
		}
		if err := c.Owned.remove(ctx, ctr.ID, ctr.State == "running"); err != nil {
			c.log.Warn().Err(err).Str("container", ctr.ID).Msg("could not remove a dead worker's container")
			continue
		}
		swept++
		c.log.Info().Str("container", ctr.ID).Strs("names", ctr.Names).Str("worker", ctr.Labels[LabelInstance]).
			Str("state", ctr.State).Msg("removed a container its worker left behind")
	}
	if swept > 0 || kept > 0 {
		c.log.Info().Int("removed", swept).Int("other_workers", kept).Msg("cleared what dead workers left")
	}
}
