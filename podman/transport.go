package podman

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// noBlindRetry keeps the bindings from repeating a non-idempotent request
// that may already have reached Podman. Their request loop sends the same
// *http.Request again, up to three times, after any error; for a dial that
// failed that is safe (nothing was sent), but a POST whose connection broke
// after it was written may have created a container or started a build.
// Such a request fails with its first error instead of running twice.
type noBlindRetry struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent map[*http.Request]error // requests that failed after getting a connection
}

func (t *noBlindRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	if idempotent(req.Method) {
		return t.next.RoundTrip(req)
	}
	t.mu.Lock()
	prev, repeated := t.sent[req]
	t.mu.Unlock()
	if repeated {
		return nil, fmt.Errorf("not sent again: the first attempt may have reached Podman: %w", prev)
	}
	var gotConn bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn = true }}
	send, err := meterUpload(req)
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(send.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil && gotConn {
		t.mu.Lock()
		if t.sent == nil {
			t.sent = map[*http.Request]error{}
		}
		t.sent[req] = err
		t.mu.Unlock()
		// The bindings retry within a second; forget the request after.
		time.AfterFunc(5*time.Second, func() {
			t.mu.Lock()
			delete(t.sent, req)
			t.mu.Unlock()
		})
	}
	return resp, err
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}
