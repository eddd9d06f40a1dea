package podman

import (
	"errors"
	"net/http"
	"net/http/httptrace"
	"testing"
)

// fakeTransport stands in for the socket: it reports a connection and then
// fails, as a service closing a kept-alive connection does.
type fakeTransport struct{ calls int }

func (f *fakeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.calls++
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Reused: true})
	}
	return nil, errors.New("connection reset by peer")
}

func TestNoBlindRetry(t *testing.T) {
	for _, tt := range []struct {
		method string
		want   int // attempts that reach the socket when the caller tries 3 times
	}{{http.MethodPost, 1}, {http.MethodDelete, 1}, {http.MethodGet, 3}} {
		fake := &fakeTransport{}
		rt := &noBlindRetry{next: fake}
		req, _ := http.NewRequest(tt.method, "http://d/v5.0.0/libpod/containers/create", nil)
		for i := 0; i < 3; i++ { // what the bindings' request loop does
			rt.RoundTrip(req)
		}
		if fake.calls != tt.want {
			t.Errorf("%s failing after it got a connection: sent %d times, want %d", tt.method, fake.calls, tt.want)
		}
	}
}
