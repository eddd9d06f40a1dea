package podman

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/blang/semver/v4"
	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/version"
)

// The bindings find their connection, and the service's API version, in a
// context under keys of an unexported type, and only bindings.NewConnection
// puts them there: after dialling with a transport of its own (for ssh://,
// an SSH client that trusts unknown hosts and never redials, see ssh.go).
// The worker makes the same context around its own transport. The keys are
// learnt by asking the bindings' own getters, which look them up.
var (
	bindingsClientKey  = keyOf(func(ctx context.Context) { _, _ = bindings.GetClient(ctx) })
	bindingsVersionKey = keyOf(func(ctx context.Context) { _ = bindings.ServiceVersion(ctx) })
)

// keyRecorder is a context that remembers the key it was asked for.
type keyRecorder struct {
	context.Context
	key any
}

func (r *keyRecorder) Value(key any) any {
	r.key = key
	return nil
}

func keyOf(ask func(context.Context)) any {
	r := &keyRecorder{Context: context.Background()}
	ask(r)
	if r.key == nil {
		panic("podman: the bindings no longer look their connection up in the context; see bindingsconn.go")
	}
	return r.key
}

// newBindingsConnection makes what bindings.NewConnection makes: a context
// carrying the bindings' connection and the service's API version, checked
// with one GET /_ping as the bindings check it. Requests go through rt.
func newBindingsConnection(ctx context.Context, u *url.URL, rt http.RoundTripper) (context.Context, error) {
	conn := &bindings.Connection{URI: u, Client: &http.Client{Transport: rt}}
	resp, err := conn.DoRequest(ctx, nil, http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the service answered /_ping with %s", resp.Status)
	}
	v := new(semver.Version)
	if h := resp.Header.Get("Libpod-API-Version"); h != "" {
		if *v, err = semver.ParseTolerant(h); err != nil {
			return nil, fmt.Errorf("the service's Libpod-API-Version %q: %w", h, err)
		}
		if minimal := version.APIVersion[version.Libpod][version.MinimalAPI]; v.LT(minimal) {
			return nil, fmt.Errorf("the service's API %s is older than %s, the oldest these bindings speak: upgrade Podman", v, minimal)
		}
	}
	c := context.WithValue(context.Background(), bindingsClientKey, conn)
	return context.WithValue(c, bindingsVersionKey, v), nil
}
