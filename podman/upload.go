package podman

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
)

// A build's context reaches Podman as one request body: a tar that the
// bindings write as they walk the folder, gzipped. Podman unpacks it onto
// its host's disk. The bound on a context is therefore kept on that body,
// counted as Podman will unpack it (a sparse or highly compressible file
// counts at its full size): whatever the bindings add (a Containerfile,
// the ignore files they re-include) is counted, and nothing is counted
// that is not sent. The body is spooled to a file of the worker's own as
// it is counted, and sent only once it is known to be within the bound:
// Podman 4 leaves its builder folder behind when an upload breaks off, so
// an oversized context must never start to reach it.

// UploadMeter counts the bytes of the request bodies sent with a context
// from LimitUpload, unpacked.
type UploadMeter struct {
	max      int64
	n        atomic.Int64
	exceeded atomic.Bool
}

// Exceeded says whether a body went past the bound (and was not sent).
func (m *UploadMeter) Exceeded() bool { return m.exceeded.Load() }

// Bytes is how many unpacked bytes were counted (up to past the bound).
func (m *UploadMeter) Bytes() int64 { return m.n.Load() }

type uploadKey struct{}

// LimitUpload returns a context whose requests send at most max bytes of
// body, counted unpacked.
func LimitUpload(ctx context.Context, max int64) (context.Context, *UploadMeter) {
	m := &UploadMeter{max: max}
	return context.WithValue(ctx, uploadKey{}, m), m
}

// errUploadTooLarge is the error of a request whose body passed its bound.
var errUploadTooLarge = errors.New("request body past its bound")

// meterUpload spools and counts the body of a request made with a
// LimitUpload context, and answers the request to send in its place; the
// transport (noBlindRetry) passes every request through it.
func meterUpload(req *http.Request) (*http.Request, error) {
	m, _ := req.Context().Value(uploadKey{}).(*UploadMeter)
	if m == nil || req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	defer req.Body.Close()
	f, err := os.CreateTemp("", "podman-worker-upload-")
	if err != nil {
		return nil, fmt.Errorf("spooling the request body: %w", err)
	}
	os.Remove(f.Name()) // the open file is all that is needed
	size, err := spool(f, req.Body, m)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body, r.ContentLength, r.GetBody = f, size, nil
	return r, nil
}

// spool copies body to f while it counts the unpacked stream (gzip, when
// it starts with gzip's magic) against m's bound.
func spool(f *os.File, body io.Reader, m *UploadMeter) (int64, error) {
	cw := &countingWriter{w: f}
	br := bufio.NewReader(io.TeeReader(body, cw))
	var unpacked io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("reading the request body: %w", err)
		}
		unpacked = gz
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := unpacked.Read(buf)
		if m.n.Add(int64(n)) > m.max {
			m.exceeded.Store(true)
			return 0, fmt.Errorf("%w of %d bytes", errUploadTooLarge, m.max)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("reading the request body: %w", err)
		}
	}
	// What gzip left unread (its trailer's end, padding) is sent as well.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return 0, fmt.Errorf("reading the request body: %w", err)
	}
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
