package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/podman-worker/podman-worker/fault"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"
)

// Transfer is how a pull or push reaches a registry. Credentials go to
// Podman only in the X-Registry-Auth header the bindings make from them
// (never on a command line, never logged).
type Transfer struct {
	// TLSVerify false lets Podman use plain HTTP or an unverified
	// certificate; the handlers allow it only for --insecure-registries.
	TLSVerify bool
	// Username and Password, when set, are the caller's credentials.
	Username, Password string
	// AuthFile is the operator's containers auth.json (--registry-auth-file),
	// used when the caller sends no credentials.
	AuthFile string
	// Progress receives Podman's progress text.
	Progress io.Writer
}

// registryError is a failure Podman reports from a registry, as text in
// the pull or push stream: the registry rows of the table classify it.
type registryError struct{ msg string }

func (e *registryError) Error() string { return e.msg }

// Pull pulls ref (a full reference) and records the caller's owner's
// claim on it; it answers the image as the caller sees it.
func (c *Client) Pull(ctx context.Context, ref string, t Transfer) (*Image, error) {
	opts := new(images.PullOptions).WithProgressWriter(t.Progress).WithQuiet(false).WithSkipTLSVerify(!t.TLSVerify).WithPolicy("always")
	setAuth(opts, t)
	ids, err := images.Pull(ctx, ref, opts)
	if err != nil {
		return nil, c.registryFailure(err, ref)
	}
	if len(ids) == 0 {
		return nil, fault.Errorf(fault.KindPodman, "Podman pulled %s but named no image", ref)
	}
	if err := c.Claim(ctx, ids[0]); err != nil {
		return nil, err
	}
	return c.ImageOf(ctx, ids[0])
}

// setAuth gives the bindings the credentials they turn into the header.
func setAuth[O interface {
	WithUsername(string) O
	WithPassword(string) O
	WithAuthfile(string) O
}](opts O, t Transfer) {
	switch {
	case t.Username != "" || t.Password != "":
		opts.WithUsername(t.Username).WithPassword(t.Password)
	case t.AuthFile != "":
		opts.WithAuthfile(t.AuthFile)
	}
}

// Push pushes the caller's image src to dest (a full reference) and
// answers the manifest digest Podman reports ("" when it reports none).
func (c *Client) Push(ctx context.Context, src, dest string, t Transfer) (string, error) {
	opts := new(images.PushOptions).WithProgressWriter(t.Progress).WithQuiet(false).WithSkipTLSVerify(!t.TLSVerify)
	setAuth(opts, t)
	if err := images.Push(ctx, src, dest, opts); err != nil {
		return "", c.registryFailure(err, dest)
	}
	if d := opts.GetManifestDigest(); d != "" || c.url.Scheme != "unix" {
		return d, nil
	}
	return registryDigest(ctx, dest, t), nil
}

// registryDigest asks the registry for the digest of dest's manifest, for a
// Podman that does not report it after a push (4.3 does not; 5 does). Only
// for a Podman on this machine (a unix socket): the worker then sees the
// registries Podman sees, and a registry named "localhost:5000" is the same
// one; an ssh:// host's could be another. It sends what the push sent (the
// caller's credentials, or the operator's auth file, and TLS as allowed)
// and answers "" when the registry cannot say (the push itself succeeded).
// Another push to the same tag in between would be the digest answered.
func registryDigest(ctx context.Context, dest string, t Transfer) string {
	ref, err := docker.ParseReference("//" + dest)
	if err != nil {
		return ""
	}
	sys := &types.SystemContext{
		AuthFilePath:                t.AuthFile,
		DockerInsecureSkipTLSVerify: types.NewOptionalBool(!t.TLSVerify),
	}
	if t.Username != "" || t.Password != "" {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: t.Username, Password: t.Password}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := docker.GetDigest(ctx, sys, ref)
	if err != nil {
		return ""
	}
	return d.String()
}

// registryFailure classifies a pull or push failure: Podman's API errors
// through the table, the stream's text through its registry rows.
func (c *Client) registryFailure(err error, ref string) error {
	var rerr *fault.Error
	if errors.As(err, &rerr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if _, r := match(err); r != nil || unreachable(err) {
		return c.Classify(err)
	}
	return c.Classify(&registryError{msg: err.Error()})
}

// registryRules are the rows of the table for a registry's failures, which
// Podman passes on as text only (the pull and push streams carry no
// status). First match wins.
var registryRules = []struct {
	text *regexp.Regexp
	kind fault.Kind
	why  string
}{
	{regexp.MustCompile(`(?i)unauthorized|authentication required|invalid username/password|requested access to the resource is denied|denied:`), fault.KindUnauthorized,
		"the registry refused the credentials (or wants some)"},
	{regexp.MustCompile(`(?i)manifest unknown|name unknown|repository name not known|not found`), fault.KindNotFound,
		"the repository or tag does not exist in the registry"},
	{regexp.MustCompile(`(?i)connection refused|no such host|i/o timeout|network is unreachable|connection reset|no route to host|server gave HTTP response to HTTPS client|tls: |x509: |pinging container registry`), fault.KindUnavailable,
		"the registry cannot be reached, or not as asked (TLS)"},
}

// classifyRegistry classifies a registryError's text.
func classifyRegistry(e *registryError) *fault.Error {
	for _, r := range registryRules {
		if r.text.MatchString(e.msg) {
			msg := dedupeTail(scrub(e.msg))
			switch r.kind {
			case fault.KindUnauthorized:
				msg = "the registry refused the credentials: " + msg
			case fault.KindNotFound:
				msg = "no such image in the registry: " + msg
			case fault.KindUnavailable:
				msg = "the registry cannot be reached: " + msg
			}
			return fault.Wrap(r.kind, e, "%s", msg)
		}
	}
	return fault.Wrap(fault.KindPodman, e, "%s", scrub(e.msg))
}

// dedupeTail drops a last ": part" that repeats the one before it: Podman
// 4 says "...: manifest unknown: manifest unknown" where Podman 5 says it
// once, and callers get one text whichever answered.
func dedupeTail(msg string) string {
	i := strings.LastIndex(msg, ": ")
	if i < 0 {
		return msg
	}
	last := msg[i:]
	if strings.HasSuffix(msg[:i], last) {
		return msg[:i]
	}
	return msg
}

// CountingWriter counts what passes to W and fails once more than Max
// bytes have (Max 0: no ceiling).
type CountingWriter struct {
	W   io.Writer
	Max int64
	n   atomic.Int64
}

// ErrTooLarge is what CountingWriter fails with past its ceiling.
var ErrTooLarge = errors.New("the ceiling was reached")

func (w *CountingWriter) Write(p []byte) (int, error) {
	if w.Max > 0 && w.n.Load()+int64(len(p)) > w.Max {
		return 0, ErrTooLarge
	}
	n, err := w.W.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// N is how many bytes passed.
func (w *CountingWriter) N() int64 { return w.n.Load() }

// Copy streams the image of id, named by names, from c (fromCtx holds
// c's connection) into to (toCtx holds its connection) through a pipe:
// Export writes a docker-archive that Load reads as it comes, so no image
// is ever held in memory. counter sits between them (its W is set here).
// The loaded image is claimed for the caller's owner on to.
func (c *Client) Copy(fromCtx, toCtx context.Context, to *Client, id string, names []string, counter *CountingWriter) error {
	pr, pw := io.Pipe()
	counter.W = pw
	exportErr := make(chan error, 1)
	go func() {
		refs := names
		if len(refs) == 0 {
			refs = []string{id}
		}
		err := images.Export(fromCtx, refs[:1], counter, new(images.ExportOptions).WithFormat("docker-archive").WithCompress(false))
		if err == nil {
			err = io.EOF
		}
		// The load sees the export's failure (the ceiling, too) as its
		// body's read error, and so loads nothing.
		pw.CloseWithError(err)
		if err == io.EOF {
			err = nil
		}
		exportErr <- err
	}()
	_, loadErr := images.Load(toCtx, pr)
	pr.CloseWithError(errors.New("the load ended"))
	eerr := <-exportErr
	if errors.Is(eerr, ErrTooLarge) || errors.Is(loadErr, ErrTooLarge) {
		return ErrTooLarge
	}
	if eerr != nil {
		return c.Classify(eerr)
	}
	if loadErr != nil {
		return to.Classify(loadErr)
	}
	if err := to.Claim(toCtx, id); err != nil {
		return to.Classify(err)
	}
	for _, n := range names[min(1, len(names)):] {
		i := strings.LastIndexByte(n, ':')
		if i < 0 {
			continue
		}
		if err := images.Tag(toCtx, id, n[i+1:], n[:i], nil); err != nil {
			return to.Classify(fmt.Errorf("tagging the copy %s: %w", n, err))
		}
	}
	return nil
}
