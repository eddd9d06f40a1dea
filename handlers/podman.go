package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/rpc"
)

// Podman is the one warm connection to the Podman service that every
// handler shares. It connects at start when it can; when it cannot, the
// worker still serves and each call that needs Podman fails fast with
// Unavailable until the service answers again, after which the next call
// reconnects by itself.
type Podman struct {
	uri  string // as configured, e.g. unix:///run/podman/podman.sock
	path string // the socket path for unix URIs, "" otherwise
	log  zerolog.Logger

	maxConns int

	mu   sync.Mutex
	conn context.Context // the bindings' connection; nil while disconnected

	// down is set when a dial to the socket fails. While it is set, calls
	// probe the socket first instead of entering the bindings, whose
	// request loop retries a failed request three times with sleeps
	// (600 ms) before it gives up.
	down atomic.Bool
}

// NewPodman prepares a connection to uri (unix://PATH, a bare PATH, or
// tcp://HOST:PORT) without dialling yet. maxConns sizes the idle connection
// pool so that concurrent calls do not redial the socket each time.
func NewPodman(uri string, maxConns int, log zerolog.Logger) (*Podman, error) {
	if strings.HasPrefix(uri, "/") {
		uri = "unix://" + uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("podman socket %q is not a URL or a path: %w", uri, err)
	}
	p := &Podman{uri: uri, log: log, maxConns: max(maxConns, 2)}
	switch u.Scheme {
	case "unix":
		p.path = u.Path
		if p.path == "" {
			p.path = u.Host + u.Path
		}
	case "tcp":
	default:
		return nil, fmt.Errorf("podman socket %q: only unix:// paths and tcp:// addresses are supported", uri)
	}
	return p, nil
}

// URI is the socket the worker talks to, as it appears in messages.
func (p *Podman) URI() string { return p.uri }

// Connect dials Podman now. An error is not fatal: calls retry later.
func (p *Podman) Connect(ctx context.Context) error {
	_, err := p.Context(ctx)
	return err
}

// Context returns ctx carrying the bindings' connection, connecting first
// when needed. Cancelling ctx cancels the call; the connection stays.
func (p *Podman) Context(ctx context.Context) (context.Context, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil && p.down.Load() {
		// The service went away since the last call. Probe it: when it is
		// back, reconnect from scratch, so that what the bindings learnt
		// about the old service (its API version) is not kept after an
		// upgrade and restart.
		if err := p.probe(ctx); err != nil {
			return nil, p.unavailable(err)
		}
		p.conn = nil
	}
	if p.conn == nil {
		if err := p.probe(ctx); err != nil {
			p.down.Store(true)
			return nil, p.unavailable(err)
		}
		// Bounded: a service that accepts connections but never answers
		// would otherwise hold the lock, and every call behind it, forever.
		// Only the connection's values are used afterwards, so its
		// context ending later does not matter.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		conn, err := bindings.NewConnection(cctx, p.uri)
		cancel()
		if err != nil {
			p.down.Store(true)
			return nil, p.unavailable(err)
		}
		p.tune(conn)
		p.conn = conn
		p.down.Store(false)
		p.log.Info().Str("socket", p.uri).Str("api_version", bindings.ServiceVersion(conn).String()).Msg("connected to podman")
	}
	return mergedContext{Context: ctx, values: p.conn}, nil
}

// background is a context for clean-up work that must happen even when
// the call that started it was cancelled (killing and removing containers).
func (p *Podman) background() context.Context {
	ctx, err := p.Context(context.Background())
	if err != nil {
		return context.Background()
	}
	return ctx
}

// probe dials the socket once, so that a dead service is reported in
// microseconds rather than after the bindings' retries.
func (p *Podman) probe(ctx context.Context) error {
	if p.path == "" {
		return nil
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "unix", p.path)
	if err != nil {
		return err
	}
	return c.Close()
}

// tune replaces the bindings' default transport, which keeps only two idle
// connections (so ten concurrent calls would redial on nearly every call)
// and never notices that the service went away.
func (p *Podman) tune(conn context.Context) {
	client, err := bindings.GetClient(conn)
	if err != nil || p.path == "" {
		return
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client.Client.Transport = &noBlindRetry{next: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, "unix", p.path)
			if err != nil && ctx.Err() == nil {
				p.down.Store(true)
			}
			return c, err
		},
		DisableCompression:  true,
		MaxIdleConns:        p.maxConns * 2,
		MaxIdleConnsPerHost: p.maxConns * 2,
		// A socket-activated service closes idle connections after twice
		// its idle timeout (at least 1 s) and may exit. Dialing a unix
		// socket costs microseconds, so idle connections are dropped
		// before that rather than risk a request on one being closed.
		IdleConnTimeout: time.Second,
	}}
}

func (p *Podman) unavailable(err error) *rpc.Error {
	return rpc.Wrap(rpc.KindUnavailable, err,
		"Podman is not reachable at %s: %s. Start it (podman system service --time=0 %s) or point the worker at a running one with --socket or PODMAN_SOCKET_PATH",
		p.uri, rootCause(err), p.uri).With("socket", p.uri)
}

// isConnectionError reports whether err means the service could not be reached.
func isConnectionError(err error) bool {
	var opErr *net.OpError
	var connErr bindings.ConnectError
	return errors.As(err, &opErr) || errors.As(err, &connErr) ||
		strings.Contains(err.Error(), "server probably quit")
}

func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// mergedContext takes cancellation and deadline from the call and values
// from the connection: the bindings find their client in the context, and
// the call's cancellation must reach the HTTP request.
type mergedContext struct {
	context.Context
	values context.Context
}

func (c mergedContext) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}
