package handlers

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/domain/entities/types"

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

func (s *Service) build(ctx context.Context, p buildParams) (any, error) {
	opts, containerfile, err := buildOptions(p)
	if err != nil {
		return nil, err
	}
	tags := []string{}
	if p.Tag != "" {
		tags = append(tags, p.Tag)
		if !p.Force {
			if exists, err := images.Exists(ctx, p.Tag, nil); err != nil {
				return nil, err
			} else if exists {
				res, err := describeImage(ctx, p.Tag, tags)
				if err != nil {
					return nil, err
				}
				res.Skipped = true
				res.Message = "image " + p.Tag + " exists and was not rebuilt; pass force to rebuild it"
				return res, nil
			}
		}
	}

	progress := newProgress(ctx)
	opts.Out, opts.Err, opts.ReportWriter = progress, progress, progress
	report, err := images.Build(ctx, []string{containerfile}, opts)
	progress.flush()
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The bindings end a cancelled build without an error.
		return nil, ctxErr
	}
	if err != nil {
		var rerr *rpc.Error
		if errors.As(err, &rerr) || s.podman(ctx).KindOf(err) == rpc.KindUnavailable {
			return nil, err
		}
		return nil, rpc.Wrap(rpc.KindPodman, err, "build failed: %s", strings.TrimSpace(err.Error())).
			With("logs", progress.lines()).With("logs_truncated", progress.truncated)
	}
	ref := p.Tag
	if ref == "" {
		ref = report.ID
	}
	res, err := describeImage(ctx, ref, tags)
	if err != nil {
		return nil, err
	}
	res.Logs, res.LogsTruncated = progress.lines(), progress.truncated
	return res, nil
}

// buildOptions checks the params against the filesystem and turns them
// into the bindings' options.
func buildOptions(p buildParams) (types.BuildOptions, string, error) {
	var opts types.BuildOptions
	dir, err := filepath.Abs(p.Context)
	if err != nil {
		return opts, "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"context\": %v", err).With("field", "context")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return opts, "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"context\" must be a directory on the worker's host: %s is not one", dir).With("field", "context")
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
	if _, err := os.Stat(file); err != nil {
		return opts, "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"file\": no Containerfile at %s", file).With("field", "file")
	}
	if p.Platform != "" {
		parts := strings.Split(p.Platform, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return opts, "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"platform\" must be OS/ARCH[/VARIANT] such as linux/amd64, got %q", p.Platform).With("field", "platform")
		}
		spec := struct{ OS, Arch, Variant string }{OS: parts[0], Arch: parts[1]}
		if len(parts) == 3 {
			spec.Variant = parts[2]
		}
		opts.Platforms = append(opts.Platforms, spec)
	}
	opts.ContextDirectory = dir
	opts.Output = p.Tag
	opts.Args = p.BuildArgs
	opts.NoCache = p.NoCache
	return opts, file, nil
}

// describeImage inspects a built (or existing) image for the result.
func describeImage(ctx context.Context, ref string, tags []string) (*buildResult, error) {
	img, err := images.GetImage(ctx, ref, nil)
	if err != nil {
		return nil, err
	}
	res := &buildResult{Tags: tags, Logs: []string{}}
	if img.ImageData != nil {
		res.ImageID = imageID(img.ID)
		res.Platform = img.Os + "/" + img.Architecture
	}
	return res, nil
}

// progress splits build output into lines and sends each as a
// build.progress notification the moment it is complete. Sending is
// synchronous: if the client stops reading, the build waits for it rather
// than piling lines up in memory.
type progress struct {
	call *rpc.Call

	mu        sync.Mutex
	partial   []byte
	kept      []string
	keptBytes int
	truncated bool
}

func newProgress(ctx context.Context) *progress {
	return &progress{call: rpc.CallFrom(ctx)}
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
		_ = p.call.Notify(ProgressMethod, progressParams{RequestID: p.call.ID, Line: line, Partial: partial})
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
