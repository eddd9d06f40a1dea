package podman

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/distribution/reference"
	"github.com/podman-worker/podman-worker/fault"
)

// Images belong to owners, as containers do. An image the worker builds
// carries its owner's label (LabelOwner, set by the build, which a
// Containerfile may not set itself); an owner sees, runs, builds FROM,
// tags, removes and prunes its own images only. The operator's base
// images (--shared-images, by name or id) are seen and used by every
// owner but changed by none. Everything else on the service (another
// owner's images, images made by hand) does not exist for the caller: it
// is NotFound in the same words as an image that does not exist, so a
// name cannot be probed.

// Image is an image a caller may use.
type Image struct {
	ID   string // the full id, without "sha256:"
	Tags []string
	// Owned says the image is the caller's owner's; otherwise it is a
	// shared base image.
	Owned  bool
	Report *types.ImageInspectReport
}

// NormalizeImageRef writes an image reference as Podman stores a local
// name: a name without a registry is under localhost/, and a name without
// tag or digest is :latest. A full id (64 hex digits, "sha256:" or not) is
// kept as the id. It fails on text that is no reference.
func NormalizeImageRef(ref string) (string, error) {
	id := strings.TrimPrefix(ref, "sha256:")
	if len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
		return id, nil
	}
	name := ref
	if i := strings.IndexByte(ref, '/'); i < 0 || !strings.ContainsAny(ref[:i], ".:") && ref[:i] != "localhost" {
		name = "localhost/" + ref
	}
	named, err := reference.ParseNamed(name)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// shared says whether the operator shares the image of id and tags.
func (c *Client) shared(id string, tags []string) bool {
	if len(c.sharedImages) == 0 {
		return false
	}
	if c.sharedImages[strings.TrimPrefix(id, "sha256:")] {
		return true
	}
	for _, t := range tags {
		if c.sharedImages[t] {
			return true
		}
	}
	return false
}

// IsSharedName says whether ref names one of the operator's shared images:
// no build may give that name to an image of its own.
func (c *Client) IsSharedName(ref string) bool {
	n, err := NormalizeImageRef(ref)
	return err == nil && c.sharedImages[n]
}

// imageNotFound is the answer for an image that does not exist and for one
// the caller may not see alike.
func imageNotFound(ref string) error {
	return fault.Errorf(fault.KindNotFound, "no such image: %s (an owner sees the images it built and the operator's shared images, --shared-images)", ref).With("image", ref)
}

// ImageOf finds the image ref names, among those the caller may use.
func (c *Client) ImageOf(ctx context.Context, ref string) (*Image, error) {
	report, err := images.GetImage(ctx, ref, nil)
	if err != nil {
		switch c.KindOf(err) {
		case fault.KindNotFound, fault.KindConflict, fault.KindInvalidParams:
			// Conflict: an id prefix more than one image's id begins with.
			return nil, imageNotFound(ref)
		}
		return nil, err
	}
	if report.ImageData == nil {
		return nil, imageNotFound(ref)
	}
	if IsClaimName(ref) {
		// The ownership record is the worker's, never a caller's name.
		return nil, imageNotFound(ref)
	}
	d := report.ImageData
	owned := c.holds(d.Labels, d.RepoTags)
	hideClaims(report)
	img := &Image{ID: strings.TrimPrefix(d.ID, "sha256:"), Tags: d.RepoTags, Report: report}
	switch {
	case owned && !c.shared(d.ID, d.RepoTags):
		img.Owned = true
	case c.shared(d.ID, d.RepoTags):
	default:
		return nil, imageNotFound(ref)
	}
	return img, nil
}

// ImageExists says whether ref names an image the caller may use.
func (c *Client) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.ImageOf(ctx, ref)
	if err != nil && c.KindOf(err) == fault.KindNotFound {
		return false, nil
	}
	return err == nil, err
}

// OwnedImage is ImageOf for the calls that change an image (rmi): a shared
// image is Forbidden, since only the operator changes those.
func (c *Client) OwnedImage(ctx context.Context, ref string) (*Image, error) {
	img, err := c.ImageOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !img.Owned {
		return nil, fault.Errorf(fault.KindForbidden, "Forbidden: %s is one of the operator's shared images (--shared-images): an owner uses it but does not change or remove it", ref).With("image", ref)
	}
	return img, nil
}

// ClaimTag checks that a build may give tag to its image: the tag is free,
// or held by one of the owner's own images. A tag of a shared image, of
// another owner's image or of an image no worker built is Conflict: a
// build never takes a name from an image that is not its owner's. It
// answers the owner's image that holds the tag now, if any.
func (c *Client) ClaimTag(ctx context.Context, tag string) (*Image, error) {
	if _, err := NormalizeImageRef(tag); err != nil {
		return nil, fault.Invalid("tag", "%v", err)
	}
	if IsClaimName(tag) {
		return nil, reservedName("tag", tag)
	}
	taken := fault.Errorf(fault.KindConflict, "the tag %s is held by an image this owner did not build; choose another tag", tag).With("field", "tag")
	if c.IsSharedName(tag) {
		return nil, taken
	}
	report, err := images.GetImage(ctx, tag, nil)
	if err != nil {
		if c.KindOf(err) == fault.KindNotFound {
			return nil, nil
		}
		return nil, err
	}
	if report.ImageData == nil || !c.holds(report.ImageData.Labels, report.ImageData.RepoTags) || c.shared(report.ImageData.ID, report.ImageData.RepoTags) {
		return nil, taken
	}
	hideClaims(report)
	return &Image{ID: strings.TrimPrefix(report.ImageData.ID, "sha256:"), Tags: report.ImageData.RepoTags, Owned: true, Report: report}, nil
}

// ListImages lists the images the caller may use: its owner's and the
// shared ones.
func (c *Client) ListImages(ctx context.Context, all bool) ([]*types.ImageSummary, error) {
	list, err := images.List(ctx, new(images.ListOptions).WithAll(all))
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(img *types.ImageSummary) bool {
		return !c.holds(img.Labels, img.RepoTags) && !c.shared(img.ID, img.RepoTags)
	})
	for _, img := range list {
		img.RepoTags = visibleNames(img.RepoTags)
		img.Names = visibleNames(img.Names)
	}
	return list, nil
}

// RemoveImage removes (or untags) an image of the owner's.
func (c *Client) RemoveImage(ctx context.Context, ref string, force bool) (*types.ImageRemoveReport, error) {
	img, err := c.OwnedImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	if claimed, others, err := c.claims(ctx, img.ID); err != nil {
		return nil, err
	} else if claimed {
		// A pulled, loaded or copied image: the caller's claim goes, and
		// the image (with its names) only when no other owner holds it.
		return c.releaseClaim(ctx, img, ref, others, force)
	}
	if force {
		// force removes the image's containers with it: only this owner's.
		if err := c.RequireOnlyOwnedUse(ctx, ref); err != nil {
			return nil, err
		}
	}
	report, errs := images.Remove(ctx, []string{ref}, new(images.RemoveOptions).WithForce(force))
	if len(errs) == 0 {
		return report, nil
	}
	err = errors.Join(errs...)
	if report == nil {
		return nil, err
	}
	// `podman rmi` reports its outcome as an exit code (1: no such
	// image, 2: in use), the same for Podman 4 and 5.
	switch report.ExitCode {
	case 1:
		return nil, fault.Wrap(fault.KindNotFound, err, "%s", err.Error())
	case 2:
		return nil, fault.Wrap(fault.KindConflict, err, "%s; pass force to remove it with its containers", err.Error())
	}
	return nil, err
}

// PruneImages removes the owner's unused images (dangling ones, or all):
// never a shared image or another owner's.
func (c *Client) PruneImages(ctx context.Context, all bool) (deleted []string, reclaimed uint64, err error) {
	filter := map[string][]string{"label": {LabelOwner + "=" + c.Identity.Owner}}
	reports, err := images.Prune(ctx, new(images.PruneOptions).WithAll(all).WithFilters(filter))
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, r := range reports {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Id, r.Err))
			continue
		}
		deleted = append(deleted, r.Id)
		reclaimed += r.Size
	}
	if all {
		// Pulled and copied images are held by claims, not the label.
		more, size, err := c.pruneClaims(ctx)
		deleted, reclaimed = append(deleted, more...), reclaimed+size
		errs = append(errs, err)
	}
	return deleted, reclaimed, errors.Join(errs...)
}
