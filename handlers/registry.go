package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
)

// ImageProgressMethod is the notification that carries each line of a
// pull's, push's or copy's progress.
const ImageProgressMethod = "image.progress"

// Registries is the operator's choice of registries, closed by default:
// pull and push reach only those named.
type Registries struct {
	// Allowed are the registries (HOST or HOST:PORT) pull and push may use.
	Allowed []string
	// Insecure are registries that may be plain HTTP or have a
	// certificate Podman cannot verify; each is allowed too.
	Insecure []string
	// AuthFile is a containers auth.json whose credentials pull and push
	// use when the caller sends none.
	AuthFile string
	// MaxCopyBytes bounds what copy_image streams (0: no copy is allowed).
	MaxCopyBytes int64
}

// DefaultMaxCopyBytes is --max-copy-bytes' default.
const DefaultMaxCopyBytes = 2 << 30

// ParseRegistries reads a comma-separated list of HOST[:PORT].
func ParseRegistries(list string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(list, ",") {
		r = strings.ToLower(strings.TrimSpace(r))
		if r == "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(r + "/x")
		if err != nil || reference.Domain(named) != r {
			return nil, fmt.Errorf("%q is not a registry: give HOST or HOST:PORT such as registry.example.com or 127.0.0.1:5000, without a scheme or path", r)
		}
		out = append(out, r)
	}
	return out, nil
}

func (r Registries) allowed(domain string) bool {
	return slices.Contains(r.Allowed, domain) || slices.Contains(r.Insecure, domain)
}

// registryAuth is a caller's credentials: a username and a password (or
// a token in place of the password, as registries such as ghcr.io take
// it). They reach Podman only in the X-Registry-Auth header.
type registryAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// UnmarshalJSON refuses unknown members and never quotes what it got:
// the value may hold a secret.
func (a *registryAuth) UnmarshalJSON(b []byte) error {
	type plain registryAuth
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil || p.Password == "" {
		return fault.Errorf(fault.KindInvalidParams, "must be an object {\"username\": ..., \"password\": ...} with a password (a token goes in password)")
	}
	*a = registryAuth(p)
	return nil
}

// resolveRef checks a reference a pull or push names against the
// operator's registries and answers it in full (registry, repository,
// tag), as Podman gets it: no short name is ever resolved by Podman's own
// search list.
func (s *Service) resolveRef(field, ref string, tlsVerify *bool) (string, bool, error) {
	if podman.IsClaimName(ref) {
		return "", false, podman.ReservedName(field, ref)
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", false, fault.Invalid(field, "%q is not an image reference: %v", ref, err)
	}
	if _, digested := named.(reference.Digested); digested && field != "image" {
		return "", false, fault.Invalid(field, "push to a tag, not a digest")
	}
	domain := reference.Domain(named)
	if !s.registries.allowed(domain) {
		allowed := "none (the default)"
		if all := append(slices.Clone(s.registries.Allowed), s.registries.Insecure...); len(all) > 0 {
			allowed = strings.Join(all, ", ")
		}
		return "", false, fault.Forbidden(field, "the registry %s is not one this worker may use (--registries); it may use %s", domain, allowed).
			With("registry", domain)
	}
	insecure := slices.Contains(s.registries.Insecure, domain)
	verify := !insecure
	if tlsVerify != nil {
		verify = *tlsVerify
	}
	if !verify && !insecure {
		return "", false, fault.Forbidden("tls_verify", "false is allowed only for the operator's insecure registries (--insecure-registries); %s is not one", domain).
			With("registry", domain)
	}
	return reference.TagNameOnly(named).String(), verify, nil
}

func (s *Service) transfer(verify bool, auth *registryAuth, progress *progress) podman.Transfer {
	t := podman.Transfer{TLSVerify: verify, AuthFile: s.registries.AuthFile, Progress: progress}
	if auth != nil {
		t.Username, t.Password = auth.Username, auth.Password
	}
	return t
}

type pullParams struct {
	Image     string        `json:"image" rpc:"required"`
	TLSVerify *bool         `json:"tls_verify"`
	Auth      *registryAuth `json:"auth"`
}

type pullResult struct {
	ImageID string   `json:"image_id"`
	Tags    []string `json:"tags"`
}

// pull pulls an image from one of the operator's registries on the call's
// connection; the image becomes the caller's owner's (a claim, claims.go).
func (s *Service) pull(ctx context.Context, p pullParams) (any, error) {
	ref, verify, err := s.resolveRef("image", p.Image, p.TLSVerify)
	if err != nil {
		return nil, err
	}
	progress := newProgressAs(ctx, ImageProgressMethod)
	img, err := s.podman(ctx).Pull(ctx, ref, s.transfer(verify, p.Auth, progress))
	progress.flush()
	if err != nil {
		return nil, err
	}
	// The tag may now name another image: prewarmed containers follow.
	s.warm.renew(ctx, s.podman(ctx))
	return pullResult{ImageID: imageID(img.ID), Tags: nonNil(img.Tags)}, nil
}

// pullMissing is run's, create's and prewarm's pull param: "never" (the
// default) uses local images only; "missing" pulls the image first when
// the caller has none of that name, by pull's rules.
func (s *Service) pullMissing(ctx context.Context, mode, image string) error {
	switch mode {
	case "", "never":
		return nil
	case "missing":
	default:
		return fault.Param(fault.KindInvalidParams, "pull", "\"pull\" must be \"never\" (the default) or \"missing\", got %q", mode)
	}
	if ok, err := s.podman(ctx).ImageExists(ctx, image); err != nil || ok {
		return err
	}
	// run bounds itself from its start; the pull before it is bounded
	// as any call without a timeout of its own.
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ref, verify, err := s.resolveRef("image", image, nil)
	if err != nil {
		return err
	}
	progress := newProgressAs(ctx, ImageProgressMethod)
	_, err = s.podman(ctx).Pull(ctx, ref, s.transfer(verify, nil, progress))
	progress.flush()
	return err
}

type pushParams struct {
	Image       string        `json:"image" rpc:"required"`
	Destination string        `json:"destination"`
	TLSVerify   *bool         `json:"tls_verify"`
	Auth        *registryAuth `json:"auth"`
}

type pushResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

// push pushes one of the caller's own images. A shared image is
// Forbidden: pushing publishes, and the operator's base images are the
// operator's to publish.
func (s *Service) push(ctx context.Context, p pushParams) (any, error) {
	field, dest := "destination", p.Destination
	if dest == "" {
		field, dest = "image", p.Image
	}
	ref, verify, err := s.resolveRef(field, dest, p.TLSVerify)
	if err != nil {
		return nil, err
	}
	client := s.podman(ctx)
	img, err := client.OwnedImage(ctx, p.Image)
	if err != nil {
		return nil, err
	}
	progress := newProgressAs(ctx, ImageProgressMethod)
	digest, err := client.Push(ctx, img.ID, ref, s.transfer(verify, p.Auth, progress))
	progress.flush()
	if err != nil {
		return nil, err
	}
	return pushResult{Reference: ref, Digest: digest}, nil
}

type copyParams struct {
	Image string `json:"image" rpc:"required"`
	From  string `json:"from" rpc:"required"`
	To    string `json:"to" rpc:"required"`
}

type copyResult struct {
	ImageID string   `json:"image_id"`
	Tags    []string `json:"tags"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	// Bytes is what was streamed (0 when the image was there already).
	Bytes int64 `json:"bytes"`
}

// copyProgressEvery is how often a copy reports the bytes sent so far.
const copyProgressEvery = 8 << 20

// copyImage copies one of the caller's images (or a shared one) from one
// connection to another: Export streamed into Load through a pipe, bounded
// by --max-copy-bytes. The copy keeps its id and tags and becomes the
// caller's owner's on the other side.
func (s *Service) copyImage(ctx context.Context, p copyParams) (any, error) {
	from, err := s.connection("from", p.From)
	if err != nil {
		return nil, err
	}
	to, err := s.connection("to", p.To)
	if err != nil {
		return nil, err
	}
	if from == to {
		return nil, fault.Param(fault.KindInvalidParams, "to", "\"to\" names the connection the image is on (%s): name another", p.To)
	}
	if s.registries.MaxCopyBytes <= 0 {
		return nil, fault.Param(fault.KindForbidden, "image", "copy_image is off on this worker (--max-copy-bytes 0)")
	}
	fctx, err := from.Context(ctx)
	if err != nil {
		return nil, err
	}
	tctx, err := to.Context(ctx)
	if err != nil {
		return nil, err
	}
	img, err := from.ImageOf(fctx, p.Image)
	if err != nil {
		return nil, from.Classify(err)
	}
	// Every tag must be free on the other side, or name this very image
	// or one of the owner's own: a copy takes no name from another owner.
	for _, tag := range img.Tags {
		if _, err := to.ClaimTag(tctx, tag); err != nil {
			if to.ImageIDOf(tctx, tag) == img.ID {
				continue
			}
			return nil, fault.Errorf(fault.KindConflict, "the tag %s is held on %s by an image this owner did not make: rmi it there or tag this image otherwise", tag, p.To).With("field", "image").With("tag", tag)
		}
	}
	progress := newProgressAs(ctx, ImageProgressMethod)
	defer progress.flush()
	_, _ = fmt.Fprintf(progress, "copying %s (%s) from %s to %s\n", p.Image, imageID(img.ID), p.From, p.To)
	counter := &podman.CountingWriter{Max: s.registries.MaxCopyBytes}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if n := counter.N(); n-sent.Load() >= copyProgressEvery {
					sent.Store(n)
					_, _ = fmt.Fprintf(progress, "sent %s\n", limits.FormatBytes(n))
				}
			}
		}
	}()
	err = from.Copy(fctx, tctx, to, img.ID, img.Tags, counter)
	close(done)
	if errors.Is(err, podman.ErrTooLarge) {
		return nil, fault.Param(fault.KindForbidden, "image", "%s is larger than this worker's limit of %s for a copy (--max-copy-bytes), counted as streamed; the copy stopped and nothing was loaded on %s", p.Image, limits.FormatBytes(s.registries.MaxCopyBytes), p.To).
			With("max_copy_bytes", s.registries.MaxCopyBytes)
	}
	if err != nil {
		return nil, err
	}
	_, _ = fmt.Fprintf(progress, "sent %d bytes; loaded on %s\n", counter.N(), p.To)
	there, err := to.ImageOf(tctx, img.ID)
	if err != nil {
		return nil, to.Classify(err)
	}
	s.warm.renew(tctx, to)
	return copyResult{ImageID: imageID(there.ID), Tags: nonNil(there.Tags), From: p.From, To: p.To, Bytes: counter.N()}, nil
}

// connection is the connection a param other than `connection` names.
func (s *Service) connection(field, name string) (*podman.Client, error) {
	c, err := s.conns.Get(name)
	if err != nil {
		return nil, fault.Invalid(field, "no connection is named %q; the worker's connections are %s", name, strings.Join(s.conns.Names(), ", "))
	}
	return c, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
