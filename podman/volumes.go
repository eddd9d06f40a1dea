package podman

import (
	"context"

	"github.com/containers/podman/v5/pkg/bindings/volumes"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/podman-worker/podman-worker/fault"
)

// Named volumes are host disk shared by name: a function that names one
// reads what any earlier function wrote there. Where the operator allows
// them (--allow-named-volumes), they belong to owners as containers and
// images do: a volume the worker creates carries its owner's label, and a
// volume of another owner, or one made by hand, does not exist for the
// caller.

// OwnedVolume makes sure the named volume is one of the owner's: it is
// created, labelled, when it does not exist yet; one that exists and is
// not the owner's is NotFound.
func (c *Client) OwnedVolume(ctx context.Context, name string) error {
	for try := 0; try < 2; try++ {
		v, err := volumes.Inspect(ctx, name, nil)
		switch {
		case err == nil:
			if v.Labels[LabelOwner] != c.Identity.Owner {
				return volumeNotFound(name)
			}
			return nil
		case c.KindOf(err) != fault.KindNotFound:
			return err
		}
		_, err = volumes.Create(ctx, types.VolumeCreateOptions{Name: name, Label: map[string]string{LabelOwner: c.Identity.Owner}}, nil)
		if err == nil {
			return nil
		}
		if c.KindOf(err) != fault.KindConflict {
			return err
		}
		// Made meanwhile, by another call: look again.
	}
	return volumeNotFound(name)
}

func volumeNotFound(name string) error {
	return fault.Errorf(fault.KindNotFound, "no such volume: %s (a volume is its owner's: another owner's, or one made by hand, cannot be used)", name).With("volume", name)
}
