package handlers

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	buildahDefine "github.com/containers/buildah/define"
	"github.com/containers/podman/v5/pkg/domain/entities/types"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// ProgressMethod is the notification that carries each build output line.
const ProgressMethod = "build.progress"

// maxProgressLine bounds one build.progress line: longer output without a
// newline is sent in pieces of this size.
const maxProgressLine = 64 << 10

// maxBuildLogBytes bounds the `logs` kept in a build result. Every line is
// streamed as a notification regardless; the result keeps the most recent.
const maxBuildLogBytes = 1 << 20

type buildParams struct {
	Context   string    `json:"context" rpc:"required"`
	Tag       string    `json:"tag"`
	File      string    `json:"file"`
	BuildArgs keyValues `json:"build_args"`
	Platform  string    `json:"platform"`
	NoCache   bool      `json:"no_cache"`
	Force     bool      `json:"force"`
	// The limits of the RUN steps and the build's timeout.
	limits.BuildRequest
}

type buildResult struct {
	ImageID       string   `json:"image_id"`
	Tags          []string `json:"tags"`
	Platform      string   `json:"platform"`
	Logs          []string `json:"logs"`
	LogsTruncated bool     `json:"logs_truncated,omitempty"`
	// Skipped says the tag existed and force was not set, so nothing was built.
	Skipped bool   `json:"skipped"`
	Message string `json:"message,omitempty"`
}

// killGrace is how long a build whose RUN step was killed at its timeout
// gets to fail that step and clean up (remove its build container) before
// the worker stops waiting for Podman's answer.
const killGrace = 15 * time.Second

// claimTag claims a build's tag. A build names only its owner's images: a
// tag that another owner's image (or the operator's) holds is refused, not
// moved. An image of the tag that stays (no force) is the build's result,
// as skipped; nil means build.
func claimTag(ctx context.Context, client *podman.Client, p buildParams) (any, error) {
	held, err := client.ClaimTag(ctx, p.Tag)
	if err != nil || held == nil || p.Force {
		return nil, err
	}
	res := describeImage(held, []string{p.Tag})
	res.Skipped = true
	res.Message = "image " + p.Tag + " exists and was not rebuilt; pass force to rebuild it"
	return res, nil
}

func (s *Service) build(ctx context.Context, p buildParams) (any, error) {
	res, err := s.policy.ResolveBuild(p.BuildRequest)
	if err != nil {
		return nil, err
	}
	client := s.podman(ctx)
	opts, containerfile, err := s.buildOptions(ctx, p, res)
	if err != nil {
		return nil, err
	}
	tags := []string{}
	if p.Tag != "" {
		tags = append(tags, p.Tag)
		if skipped, err := claimTag(ctx, client, p); err != nil || skipped != nil {
			return skipped, err
		}
	}

	// A cgroup of the worker's own bounds the RUN steps' processes and
	// lets the timeout stop a step that is running.
	group, why := s.podman(ctx).NewBuildCgroup(ctx, res.Pids)
	if group != nil {
		opts.CommonBuildOpts.CgroupParent = group.Parent()
		defer func() {
			if err := group.Remove(); err != nil {
				s.log.Warn().Err(err).Msg("build cgroup left behind")
			}
		}()
	} else {
		s.log.Debug().Str("reason", why).Msg("build without a cgroup of its own: no pids limit for RUN steps, and a timeout cannot stop a running step")
	}

	progress := newProgress(ctx)
	opts.Out, opts.Err, opts.ReportWriter = progress, progress, progress
	// The context's bound holds on the upload itself, counted unpacked.
	report, end, err := client.Build(ctx, containerfile, opts, podman.BuildBounds{
		Timeout: res.Timeout, KillGrace: killGrace, Group: group, MaxContext: s.policy.MaxBuildContext})
	progress.flush()
	if end.ContextExceeded {
		return nil, fault.Forbidden("context", "%s holds more than this worker's limit of %s (--max-build-context), counted as sent to Podman, unpacked; leave large files out with .containerignore or .dockerignore", p.Context, limits.FormatBytes(s.policy.MaxBuildContext))
	}
	if end.TimedOut {
		return nil, fault.Errorf(fault.KindTimeout, "the build did not finish within its timeout of %ss and was stopped", seconds(res.Timeout)).
			With("timeout", res.Timeout.Seconds()).With("logs", progress.lines()).With("logs_truncated", progress.truncated)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The bindings end a cancelled build without an error.
		return nil, ctxErr
	}
	if err != nil {
		var rerr *fault.Error
		if errors.As(err, &rerr) || s.podman(ctx).KindOf(err) == fault.KindUnavailable {
			return nil, err
		}
		return nil, fault.Wrap(fault.KindPodman, err, "build failed: %s", podman.Scrub(strings.TrimSpace(err.Error()))).
			With("logs", progress.lines()).With("logs_truncated", progress.truncated)
	}
	ref := p.Tag
	if ref == "" {
		ref = report.ID
	} else {
		// The tag may now name another image: prewarmed containers of
		// the old one make way for new ones.
		s.warm.renew(ctx, s.podman(ctx))
	}
	img, err := client.ImageOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	described := describeImage(img, tags)
	described.Logs, described.LogsTruncated = progress.lines(), progress.truncated
	return described, nil
}

// buildOptions checks the params against the policy and the filesystem
// and turns them into the bindings' options: the context and Containerfile
// only under the operator's build roots and within the size cap, and RUN
// steps with the resolved limits, the chosen network (none by default)
// and fewer capabilities.
func (s *Service) buildOptions(ctx context.Context, p buildParams, res limits.Resources) (types.BuildOptions, string, error) {
	var opts types.BuildOptions
	dir, err := s.policy.BuildPath("context", p.Context)
	if isKind(err, fault.KindInvalidParams) {
		return opts, "", fault.Param(fault.KindInvalidParams, "context", "\"context\" must be a directory on the worker's host: %s is not one", p.Context)
	}
	if err != nil {
		return opts, "", err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return opts, "", fault.Param(fault.KindInvalidParams, "context", "\"context\" must be a directory on the worker's host: %s is not one", dir)
	}
	file := p.File
	if file == "" {
		// The seed's default is Dockerfile; podman also knows Containerfile.
		file = "Dockerfile"
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			if _, err := os.Stat(filepath.Join(dir, "Containerfile")); err == nil {
				file = "Containerfile"
			}
		}
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	// The Containerfile is read and uploaded too (a symlink is followed),
	// so it must lie under a build root like the context.
	resolved, err := s.policy.BuildPath("file", file)
	if isKind(err, fault.KindInvalidParams) {
		return opts, "", fault.Invalid("file", "no Containerfile at %s", file)
	}
	if err != nil {
		return opts, "", err
	}
	if st, err := os.Stat(resolved); err != nil || st.IsDir() {
		return opts, "", fault.Invalid("file", "no Containerfile at %s", file)
	}
	if err := limits.CheckBuildContext(dir, resolved); err != nil {
		return opts, "", err
	}
	if err := s.checkContainerfile(ctx, dir, resolved, p.BuildArgs); err != nil {
		return opts, "", err
	}
	if p.Platform != "" {
		parts := strings.Split(p.Platform, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return opts, "", fault.Param(fault.KindInvalidParams, "platform", "\"platform\" must be OS/ARCH[/VARIANT] such as linux/amd64, got %q", p.Platform)
		}
		spec := struct{ OS, Arch, Variant string }{OS: parts[0], Arch: parts[1]}
		if len(parts) == 3 {
			spec.Variant = parts[2]
		}
		opts.Platforms = append(opts.Platforms, spec)
	}
	opts.ContextDirectory = dir
	opts.Output = p.Tag
	// The image is its owner's (the Containerfile may not set this label).
	opts.Labels = []string{podman.LabelOwner + "=" + s.podman(ctx).Identity.Owner}
	// FROM names a local image, checked above; Podman fetches nothing.
	opts.PullPolicy = buildahDefine.PullNever
	// ONBUILD triggers do not survive in OCI images: an owner's image
	// carries none into another build.
	opts.OutputFormat = buildahDefine.OCIv1ImageManifest
	opts.Args = p.BuildArgs
	opts.NoCache = p.NoCache
	// A failed or stopped build leaves no build container behind.
	opts.ForceRmIntermediateCtrs = true
	opts.CommonBuildOpts = &buildahDefine.CommonBuildOptions{
		Memory: res.Memory, MemorySwap: res.MemorySwap, CPUQuota: res.CPUQuota, CPUPeriod: limits.CPUPeriod,
	}
	opts.DropCapabilities = limits.BuildDropCaps
	switch res.NetworkMode {
	case "none":
		// Only a loopback of their own: Podman 4.3 otherwise runs RUN
		// steps in the host's network namespace.
		opts.ConfigureNetwork = buildahDefine.NetworkDisabled
		opts.NamespaceOptions = buildahDefine.NamespaceOptions{{Name: "network", Host: false}}
	case "bridge":
		opts.ConfigureNetwork = buildahDefine.NetworkEnabled
		opts.NamespaceOptions = buildahDefine.NamespaceOptions{{Name: "network", Host: false}}
	case "host":
		opts.NamespaceOptions = buildahDefine.NamespaceOptions{{Name: "network", Host: true}}
	}
	return opts, resolved, nil
}

// isKind says whether err is a *fault.Error of kind k.
func isKind(err error, k fault.Kind) bool {
	var e *fault.Error
	return errors.As(err, &e) && e.Kind == k
}

// describeImage is a built (or existing) image as the result shows it.
func describeImage(img *podman.Image, tags []string) *buildResult {
	res := &buildResult{Tags: tags, Logs: []string{}, ImageID: imageID(img.ID)}
	if d := img.Report.ImageData; d != nil {
		res.Platform = d.Os + "/" + d.Architecture
	}
	return res
}

// progress splits build output into lines and sends each as a
// build.progress notification the moment it is complete. Sending is
// synchronous: if the client stops reading, the build waits for it rather
// than piling lines up in memory.
type progress struct {
	call   *rpc.Call
	method string

	mu        sync.Mutex
	partial   []byte
	kept      []string
	keptBytes int
	truncated bool
}

func newProgress(ctx context.Context) *progress {
	return newProgressAs(ctx, ProgressMethod)
}

// newProgressAs is newProgress for another notification (image.progress).
func newProgressAs(ctx context.Context, method string) *progress {
	return &progress{call: rpc.CallFrom(ctx), method: method}
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		if i := bytes.IndexByte(p.partial, '\n'); i >= 0 {
			p.emit(string(bytes.TrimRight(p.partial[:i], "\r")), false)
			p.partial = p.partial[i+1:]
			continue
		}
		if len(p.partial) <= maxProgressLine {
			break
		}
		// A step that prints without newlines (a progress bar, a binary)
		// would grow one line without bound: it goes out in pieces.
		cut := maxProgressLine
		for cut > maxProgressLine-utf8.UTFMax && !utf8.RuneStart(p.partial[cut]) {
			cut--
		}
		p.emit(string(p.partial[:cut]), true)
		p.partial = p.partial[cut:]
	}
	if len(p.partial) == 0 {
		p.partial = nil // drop the backing array of a long line
	}
	return len(b), nil
}

func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		p.emit(string(p.partial), false)
		p.partial = nil
	}
}

// emit sends one line; partial says the line goes on in the next one.
func (p *progress) emit(line string, partial bool) {
	p.kept = append(p.kept, line)
	p.keptBytes += len(line)
	for p.keptBytes > maxBuildLogBytes && len(p.kept) > 1 {
		p.keptBytes -= len(p.kept[0])
		p.kept = p.kept[1:]
		p.truncated = true
	}
	if p.call != nil && p.call.ID != nil {
		_ = p.call.Notify(p.method, progressParams{RequestID: p.call.ID, Line: line, Partial: partial})
	}
}

func (p *progress) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.kept...)
}

type progressParams struct {
	RequestID any    `json:"request_id"`
	Line      string `json:"line"`
	// Partial says the line was longer than maxProgressLine and goes on
	// in the next notification.
	Partial bool `json:"partial,omitempty"`
}
