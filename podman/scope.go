package podman

import (
	"context"
	"slices"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/podman-worker/podman-worker/fault"
)

// Lookup finds a container the way every container method must: by its
// exact name or full id (Podman would also take any unique id prefix,
// which lets a caller guess its way to other containers), among the
// containers of this worker's owner only. Anything else is NotFound, with
// the same message as a container that does not exist. A container whose
// removal is under way is waited for, and then is gone. It answers the
// container's full id, which the caller then acts on.
func (c *Client) Lookup(ctx context.Context, ref string) (string, error) {
	if err := c.Owned.AwaitRemoval(ctx, ref); err != nil {
		return "", err
	}
	data, err := containers.Inspect(ctx, ref, nil)
	if err != nil {
		switch c.KindOf(err) {
		case fault.KindNotFound,
			// An id prefix that more than one container's id begins
			// with: Podman says so, and a prefix selects nothing here.
			fault.KindConflict:
			return "", notFound(ref)
		}
		return "", err
	}
	if (data.Name != ref && data.ID != ref) || data.Config == nil || data.Config.Labels[LabelOwner] != c.Identity.Owner ||
		data.State != nil && idleWarm(data.Config.Labels, data.State.Status) {
		return "", notFound(ref)
	}
	return data.ID, nil
}

func notFound(ref string) error {
	return fault.Errorf(fault.KindNotFound, "no such container: %s", ref).With("container", ref)
}

// List lists the containers of this worker's owner (all of them, or the
// running ones), after the removals under way have ended.
func (c *Client) List(ctx context.Context, all bool) ([]types.ListContainer, error) {
	if err := c.Owned.AwaitRemovals(ctx); err != nil {
		return nil, err
	}
	filter := map[string][]string{"label": {LabelOwner + "=" + c.Identity.Owner}}
	list, err := containers.List(ctx, new(containers.ListOptions).WithAll(all).WithFilters(filter))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list, func(ctr types.ListContainer) bool { return idleWarm(ctr.Labels, ctr.State) }), nil
}

// KeptCount counts the owner's kept containers on the service (create's,
// and runs with auto_remove false), whichever worker made them.
func (c *Client) KeptCount(ctx context.Context) (int, error) {
	filter := map[string][]string{"label": {LabelOwner + "=" + c.Identity.Owner, LabelKept + "=true"}}
	list, err := containers.List(ctx, new(containers.ListOptions).WithAll(true).WithFilters(filter))
	return len(list), err
}

// idleWarm says whether a container is prewarmed and not yet taken by a
// run: the worker's own stock, which no caller has asked for.
func idleWarm(labels map[string]string, state string) bool {
	return labels[LabelWarm] == "true" && (state == "created" || state == "initialized" || state == "configured")
}

// RequireOnlyOwnedUse answers Conflict when a container this worker's
// owner did not make uses the image: removing the image with force would
// remove that container too.
func (c *Client) RequireOnlyOwnedUse(ctx context.Context, image string) error {
	list, err := containers.List(ctx, new(containers.ListOptions).WithAll(true).WithFilters(map[string][]string{"ancestor": {image}}))
	if err != nil {
		return err
	}
	for _, ctr := range list {
		if ctr.Labels[LabelOwner] != c.Identity.Owner {
			return fault.Errorf(fault.KindConflict, "image %s is used by a container this worker does not own; force would remove it too, so the image stays", image).With("image", image)
		}
	}
	return nil
}
