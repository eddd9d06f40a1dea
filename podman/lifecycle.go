package podman

import (
	"context"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/system"
	"github.com/containers/podman/v5/pkg/specgen"
)

// The container lifecycle as handlers use it: each a thin call, so that
// everything said to Podman goes through this package (its errors are
// classified where the handlers' adapter answers them).

// Create creates a container from g and answers its id.
func (c *Client) Create(ctx context.Context, g *specgen.SpecGenerator) (string, error) {
	created, err := containers.CreateWithSpec(ctx, g, nil)
	return created.ID, err
}

// Start starts a created or stopped container.
func (c *Client) Start(ctx context.Context, id string) error {
	return containers.Start(ctx, id, nil)
}

// Stop stops a container, killing it after timeout seconds (Podman's
// default, 10, when nil).
func (c *Client) Stop(ctx context.Context, id string, timeout *uint) error {
	opts := new(containers.StopOptions)
	if timeout != nil {
		opts.WithTimeout(*timeout)
	}
	return containers.Stop(ctx, id, opts)
}

// Signal sends sig (a name or number podman kill takes) to a container.
func (c *Client) Signal(ctx context.Context, id, sig string) error {
	return containers.Kill(ctx, id, new(containers.KillOptions).WithSignal(sig))
}

// RemoveContainer removes a container and answers the ids removed; force
// kills a running one at once (no stop timeout), as the seed's --force did.
func (c *Client) RemoveContainer(ctx context.Context, id string, force bool) ([]string, error) {
	opts := new(containers.RemoveOptions).WithForce(force)
	if force {
		opts.WithTimeout(0)
	}
	reports, err := containers.Remove(ctx, id, opts)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range reports {
		if r.Err != nil {
			return ids, r.Err
		}
		ids = append(ids, r.Id)
	}
	return ids, nil
}

// Rename gives a container a new name.
func (c *Client) Rename(ctx context.Context, id, name string) error {
	return containers.Rename(ctx, id, new(containers.RenameOptions).WithName(name))
}

// Info answers the service's info object.
func (c *Client) Info(ctx context.Context) (*define.Info, error) {
	return system.Info(ctx, nil)
}
