package handlers

import (
	"context"
	"strings"
	"time"
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
	list, err := s.podman(ctx).ListImages(ctx, p.All)
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
	return s.podman(ctx).ImageExists(ctx, p.Image)
}

type inspectParams struct {
	Image  string `json:"image" rpc:"required"`
	Format string `json:"format"`
}

// inspect answers podman's image inspect object, with the image id in the
// same "sha256:<hex>" form as every other image id the worker reports.
func (s *Service) inspect(ctx context.Context, p inspectParams) (any, error) {
	img, err := s.podman(ctx).ImageOf(ctx, p.Image)
	if err != nil {
		return nil, err
	}
	report := img.Report
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
	report, err := s.podman(ctx).RemoveImage(ctx, p.Image, p.Force)
	if err != nil {
		return nil, err
	}
	res := rmiResult{Image: p.Image, Message: "Image deleted successfully", Untagged: []string{}, Deleted: []string{}}
	if report != nil {
		res.Untagged = append(res.Untagged, report.Untagged...)
		for _, id := range report.Deleted {
			res.Deleted = append(res.Deleted, imageID(id))
		}
	}
	switch {
	case len(res.Deleted) == 0 && len(res.Untagged) > 0:
		// Another tag still holds the image: only the name went.
		res.Message = "Image untagged; other tags still use it"
	case len(res.Deleted) == 0:
		// A pulled or copied image other owners hold too: only the
		// caller's claim went (podman/claims.go).
		res.Message = "Image released; other owners still hold it"
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
	deleted, reclaimed, err := s.podman(ctx).PruneImages(ctx, p.All)
	if err != nil {
		return nil, err
	}
	res := pruneResult{ImagesDeleted: []string{}, SpaceReclaimed: reclaimed, Message: "Images pruned successfully"}
	for _, id := range deleted {
		res.ImagesDeleted = append(res.ImagesDeleted, imageID(id))
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
