package podman

import (
	"context"
	"errors"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/podman-worker/podman-worker/fault"
)

// An image the worker builds carries its owner in a label. An image that
// comes from elsewhere (pull, copy_image's load) cannot get a label
// without becoming another image (a label is part of the config, so of the
// id), and copy_image promises the same id on both sides. Its owners are
// recorded instead as extra Podman names, one per owner:
//
//	localhost/podman-worker-owned/<full image id>:<owner>
//
// A name lives in Podman's own store, so the record survives worker and
// service restarts, travels with nothing (save and push name what the
// worker tells them), and several owners can hold one image at once, each
// by its own name. These names are the worker's: never listed or shown to
// a caller, never accepted from one (as a tag, a destination, an image to
// act on), and an owner's rmi or prune drops its own claim only, removing
// the image when no other owner holds it.

// ClaimRepo is the repository under which claims are recorded.
const ClaimRepo = "localhost/podman-worker-owned"

// claimName is owner's claim on the image of id.
func claimName(id, owner string) string {
	return ClaimRepo + "/" + strings.TrimPrefix(id, "sha256:") + ":" + owner
}

// IsClaimName says whether ref is (or looks like) a name under ClaimRepo,
// which only the worker gives.
func IsClaimName(ref string) bool {
	r := strings.ToLower(strings.TrimSpace(ref))
	return strings.HasPrefix(r, ClaimRepo+"/") || strings.HasPrefix(r, "podman-worker-owned/") || r == ClaimRepo || r == "podman-worker-owned"
}

// reservedName refuses a name under ClaimRepo from a caller.
func reservedName(field, ref string) error {
	return fault.Invalid(field, "%s is under %s, which the worker keeps for its record of who owns an image", ref, ClaimRepo)
}

// ReservedName is reservedName for handlers.
func ReservedName(field, ref string) error { return reservedName(field, ref) }

// holds says whether the caller's owner holds an image of these labels and
// names: it built it (label) or claimed it (a name).
func (c *Client) holds(labels map[string]string, names []string) bool {
	if labels[LabelOwner] == c.Identity.Owner {
		return true
	}
	for _, n := range names {
		if IsClaimName(n) && strings.HasSuffix(n, ":"+c.Identity.Owner) {
			return true
		}
	}
	return false
}

// visibleNames drops the claims from a list of names.
func visibleNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !IsClaimName(n) {
			out = append(out, n)
		}
	}
	return out
}

// hideClaims drops the claims from an inspect report.
func hideClaims(report *types.ImageInspectReport) {
	if report == nil || report.ImageData == nil {
		return
	}
	report.ImageData.RepoTags = visibleNames(report.ImageData.RepoTags)
	report.ImageData.NamesHistory = visibleNames(report.ImageData.NamesHistory)
}

// Claim records that the caller's owner holds the image of id.
func (c *Client) Claim(ctx context.Context, id string) error {
	id = strings.TrimPrefix(id, "sha256:")
	return images.Tag(ctx, id, c.Identity.Owner, ClaimRepo+"/"+id, nil)
}

// claims reads who holds the image of id: whether the caller's owner holds
// it by a claim, and whether any other owner holds it (claim or label).
func (c *Client) claims(ctx context.Context, id string) (mine, others bool, err error) {
	report, err := images.GetImage(ctx, id, nil)
	if err != nil {
		return false, false, err
	}
	if report.ImageData == nil {
		return false, false, nil
	}
	if l := report.ImageData.Labels[LabelOwner]; l != "" && l != c.Identity.Owner {
		others = true
	}
	for _, n := range report.ImageData.RepoTags {
		if !IsClaimName(n) {
			continue
		}
		if strings.HasSuffix(n, ":"+c.Identity.Owner) {
			mine = true
		} else {
			others = true
		}
	}
	return mine, others, nil
}

// releaseClaim is rmi for an image the caller's owner holds by a claim.
// When other owners hold it too, only the claim goes: the image and its
// names stay theirs. Otherwise a name (of several) is untagged, or the
// claim and the image go.
func (c *Client) releaseClaim(ctx context.Context, img *Image, ref string, others, force bool) (*types.ImageRemoveReport, error) {
	id := img.ID
	untagClaim := func() error { return images.Untag(ctx, id, c.Identity.Owner, ClaimRepo+"/"+id, nil) }
	if others {
		if err := untagClaim(); err != nil {
			return nil, err
		}
		return &types.ImageRemoveReport{}, nil
	}
	byName := strings.TrimPrefix(ref, "sha256:") != id && !strings.HasPrefix(id, strings.TrimPrefix(ref, "sha256:"))
	if byName && len(img.Tags) > 1 {
		n, err := NormalizeImageRef(ref)
		if err != nil {
			return nil, err
		}
		i := strings.LastIndexByte(n, ':')
		if err := images.Untag(ctx, id, n[i+1:], n[:i], nil); err != nil {
			return nil, err
		}
		return &types.ImageRemoveReport{Untagged: []string{n}}, nil
	}
	if force {
		if err := c.RequireOnlyOwnedUse(ctx, id); err != nil {
			return nil, err
		}
	}
	if err := untagClaim(); err != nil {
		return nil, err
	}
	report, errs := images.Remove(ctx, []string{id}, new(images.RemoveOptions).WithForce(force))
	if len(errs) == 0 {
		if report != nil {
			report.Untagged = visibleNames(report.Untagged)
		}
		return report, nil
	}
	// The image stays: so does the claim.
	_ = c.Claim(context.WithoutCancel(ctx), id)
	err := errors.Join(errs...)
	if report != nil && report.ExitCode == 2 {
		return nil, fault.Wrap(fault.KindConflict, err, "%s; pass force to remove it with its containers", scrub(err.Error()))
	}
	return nil, err
}

// pruneClaims drops the owner's claims on images no container uses, and
// removes the images no other owner holds: prune with all for pulled and
// copied images.
func (c *Client) pruneClaims(ctx context.Context) (deleted []string, reclaimed uint64, err error) {
	list, err := images.List(ctx, new(images.ListOptions).WithAll(true))
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, s := range list {
		id := strings.TrimPrefix(s.ID, "sha256:")
		if s.Containers > 0 || c.shared(id, s.RepoTags) || !c.holds(nil, s.RepoTags) {
			continue
		}
		_, others, err := c.claims(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		img := &Image{ID: id, Tags: visibleNames(s.RepoTags)}
		report, err := c.releaseClaim(ctx, img, id, others, false)
		if err != nil {
			if c.KindOf(err) != fault.KindConflict {
				errs = append(errs, err)
			}
			continue
		}
		if len(report.Deleted) > 0 {
			deleted = append(deleted, id)
			reclaimed += uint64(s.Size)
		}
	}
	return deleted, reclaimed, errors.Join(errs...)
}

// ImageIDOf is the id of the image ref names on the service, whoever's it
// is ("" when none): for checks that compare content, never to show.
func (c *Client) ImageIDOf(ctx context.Context, ref string) string {
	report, err := images.GetImage(ctx, ref, nil)
	if err != nil || report.ImageData == nil {
		return ""
	}
	return strings.TrimPrefix(report.ImageData.ID, "sha256:")
}
