package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/images"

	"github.com/podman-worker/podman-worker/rpc"
)

// imageSummary is the seed CLI's `images` entry.
type imageSummary struct {
	ID      string   `json:"id"`
	Tags    []string `json:"tags"`
	Size    int64    `json:"size"`
	Created string   `json:"created"`
	Digest  string   `json:"digest"`
}

type imagesParams struct {
	All bool `json:"all"`
}

func (s *Service) images(ctx context.Context, p imagesParams) (any, error) {
	list, err := images.List(ctx, new(images.ListOptions).WithAll(p.All))
	if err != nil {
		return nil, err
	}
	out := make([]imageSummary, 0, len(list))
	for _, img := range list {
		tags := img.RepoTags
		if tags == nil {
			tags = []string{}
		}
		out = append(out, imageSummary{
			ID:      imageID(img.ID),
			Tags:    tags,
			Size:    img.Size,
			Created: time.Unix(img.Created, 0).UTC().Format(time.RFC3339),
			Digest:  img.Digest,
		})
	}
	return out, nil
}

type imageParams struct {
	Image string `json:"image" rpc:"required"`
}

func (s *Service) exists(ctx context.Context, p imageParams) (any, error) {
	return images.Exists(ctx, p.Image, nil)
}

type inspectParams struct {
	Image  string `json:"image" rpc:"required"`
	Format string `json:"format"`
}

// inspect answers podman's image inspect object, with the image id in the
// same "sha256:<hex>" form as every other image id the worker reports.
func (s *Service) inspect(ctx context.Context, p inspectParams) (any, error) {
	report, err := images.GetImage(ctx, p.Image, nil)
	if err != nil {
		return nil, err
	}
	if report.ImageData != nil {
		report.ImageData.ID = imageID(report.ImageData.ID)
	}
	if p.Format != "" {
		return render(ctx, p.Format, report)
	}
	return report, nil
}

type rmiParams struct {
	Image string `json:"image" rpc:"required"`
	Force bool   `json:"force"`
}

type rmiResult struct {
	Image    string   `json:"image"`
	Message  string   `json:"message"`
	Untagged []string `json:"untagged"`
	Deleted  []string `json:"deleted"`
}

func (s *Service) rmi(ctx context.Context, p rmiParams) (any, error) {
	// A container whose run has answered is gone for this call too, and
	// prewarmed containers, which hold their images, are removed and none
	// is made meanwhile.
	resume, err := s.warm.suspend(ctx, s.podman(ctx))
	defer resume()
	if err != nil {
		return nil, err
	}
	if p.Force {
		// force removes the image's containers with it: only this owner's.
		if err := s.podman(ctx).RequireOnlyOwnedUse(ctx, p.Image); err != nil {
			return nil, err
		}
	}
	report, errs := images.Remove(ctx, []string{p.Image}, new(images.RemoveOptions).WithForce(p.Force))
	if len(errs) > 0 {
		err := errors.Join(errs...)
		if report == nil {
			return nil, err
		}
		// `podman rmi` reports its outcome as an exit code (1: no such
		// image, 2: in use), the same for Podman 4 and 5.
		switch report.ExitCode {
		case 1:
			return nil, rpc.Wrap(rpc.KindNotFound, err, "%s", err.Error())
		case 2:
			return nil, rpc.Wrap(rpc.KindConflict, err, "%s; pass force to remove it with its containers", err.Error())
		}
		return nil, err
	}
	res := rmiResult{Image: p.Image, Message: "Image deleted successfully", Untagged: []string{}, Deleted: []string{}}
	if report != nil {
		res.Untagged = append(res.Untagged, report.Untagged...)
		for _, id := range report.Deleted {
			res.Deleted = append(res.Deleted, imageID(id))
		}
	}
	if len(res.Deleted) == 0 && len(res.Untagged) > 0 {
		// Another tag still holds the image: only the name went.
		res.Message = "Image untagged; other tags still use it"
	}
	return res, nil
}

type pruneParams struct {
	// All prunes every image no container uses, not only dangling ones.
	All bool `json:"all"`
}

type pruneResult struct {
	ImagesDeleted  []string `json:"images_deleted"`
	SpaceReclaimed uint64   `json:"space_reclaimed"`
	Message        string   `json:"message"`
}

func (s *Service) prune(ctx context.Context, p pruneParams) (any, error) {
	resume, err := s.warm.suspend(ctx, s.podman(ctx))
	defer resume()
	if err != nil {
		return nil, err
	}
	reports, err := images.Prune(ctx, new(images.PruneOptions).WithAll(p.All))
	if err != nil {
		return nil, err
	}
	res := pruneResult{ImagesDeleted: []string{}, Message: "Images pruned successfully"}
	var errs []error
	for _, r := range reports {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Id, r.Err))
			continue
		}
		res.ImagesDeleted = append(res.ImagesDeleted, imageID(r.Id))
		res.SpaceReclaimed += r.Size
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return res, nil
}

// imageID writes an image id as "sha256:<hex>", the seed's form, whatever
// form the API used.
func imageID(id string) string {
	if id == "" || strings.HasPrefix(id, "sha256:") {
		return id
	}
	return "sha256:" + id
}
