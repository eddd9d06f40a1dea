package podman

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
)

// gzippedTar is a gzipped tar of one file of size zero bytes: a few KB
// on the wire however large the file.
func gzippedTar(t *testing.T, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	io.CopyN(tw, zeros{}, size)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bodyReader reads whatever body it is handed, as the HTTP transport would.
type bodyReader struct{ got int64 }

func (r *bodyReader) RoundTrip(req *http.Request) (*http.Response, error) {
	n, err := io.Copy(io.Discard, req.Body)
	req.Body.Close()
	r.got = n
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// The bound holds on the body as Podman unpacks it: 8 MiB of zeros that
// gzip shrinks to a few KB count 8 MiB, and the request fails past the
// bound; under it, every byte goes through unchanged.
func TestUploadBoundCountsUnpackedBytes(t *testing.T) {
	body := gzippedTar(t, 8<<20)
	if len(body) > 64<<10 {
		t.Fatalf("the test body is %d bytes gzipped; expected a few KB", len(body))
	}
	for _, c := range []struct {
		max     int64
		refused bool
	}{{1 << 20, true}, {16 << 20, false}} {
		ctx, meter := LimitUpload(context.Background(), c.max)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://d/v4.0.0/libpod/build", bytes.NewReader(body))
		rt := &bodyReader{}
		_, err := (&noBlindRetry{next: rt}).RoundTrip(req)
		if c.refused {
			if err == nil || !errors.Is(err, errUploadTooLarge) || !meter.Exceeded() {
				t.Errorf("bound %d: err %v, exceeded %v; want the body cut", c.max, err, meter.Exceeded())
			}
			continue
		}
		if err != nil || meter.Exceeded() || rt.got != int64(len(body)) || meter.Bytes() < 8<<20 {
			t.Errorf("bound %d: err %v, exceeded %v, sent %d of %d, counted %d", c.max, err, meter.Exceeded(), rt.got, len(body), meter.Bytes())
		}
	}
	// A request without the bound passes untouched.
	req, _ := http.NewRequest(http.MethodPost, "http://d/x", bytes.NewReader(body))
	rt := &bodyReader{}
	if _, err := (&noBlindRetry{next: rt}).RoundTrip(req); err != nil || rt.got != int64(len(body)) {
		t.Errorf("unbounded request: %v, %d bytes", err, rt.got)
	}
}
