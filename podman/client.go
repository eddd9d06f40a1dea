// Package podman owns everything the worker says to Podman: the warm
// connection to each Podman service (a local socket, or a host over SSH)
// and its transport, the named connections a call chooses among, attach
// and exec streams, archive upload and download, container logs, the
// containers the worker owns (kill, remove, retry), the one table that
// turns Podman's errors into the worker's error kinds, and the launcher of
// `podman system service` that the embedded service and the test harness
// share. Handlers call it; they never hold a bindings connection or
// classify a Podman error themselves.
package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
)

// connectTimeout bounds one attempt to set up the bindings' connection
// (which dials the service and asks its version). A service that accepts
// connections and never answers costs each waiting call at most its own
// deadline, never this: the attempt runs on its own, off every call's path.
const connectTimeout = 10 * time.Second

// Client is the one warm connection to a Podman service that every handler
// shares. It connects at start when it can; when it cannot, the worker still
// serves and each call that needs Podman fails fast with Unavailable until
// the service answers again, after which the next call reconnects by itself.
type Client struct {
	name string // the connection's name, as calls choose it
	uri  string // as configured, e.g. unix:///run/podman/podman.sock
	url  *url.URL
	// dialSocket reaches the service's unix socket, locally or through
	// SSH; nil for tcp:// URIs, which the bindings dial themselves.
	dialSocket func(ctx context.Context) (net.Conn, error)
	ssh        *sshDialer // for ssh:// URIs
	log        zerolog.Logger

	maxConns int

	// Identity is the worker's, as labelled on every container it makes.
	Identity Identity
	// Owned is the set of containers this client created and has not
	// removed yet.
	Owned *Owned
	// Usage counts the calls made through this connection.
	Usage Usage
	// sharedImages are the operator's base images every owner may use,
	// as normalized names and full ids (images.go).
	sharedImages map[string]bool

	// closed ends the watch for Podman's return (Close).
	closed    chan struct{}
	closeOnce sync.Once
	watching  atomic.Bool
	// facts are what the worker learns once about Podman's host.
	facts factsCache

	mu sync.Mutex
	// conn is the bindings' connection; nil while disconnected.
	conn context.Context
	// attempt is the connection attempt under way, if any. Callers wait
	// for it without holding mu, each until its own deadline.
	attempt *attempt

	// down is set when a dial to the socket fails. While it is set, calls
	// probe the socket first instead of entering the bindings, whose
	// request loop retries a failed request three times with sleeps
	// (600 ms) before it gives up.
	down atomic.Bool
}

// attempt is one connection attempt; done closes when conn or err is set.
type attempt struct {
	done chan struct{}
	conn context.Context
	err  error
}

// Options configure a Client; zero values take the defaults.
type Options struct {
	// Name is the connection's name, as calls choose it (DefaultName
	// when empty).
	Name string
	// MaxConns sizes the idle connection pool so that concurrent calls do
	// not redial the socket each time (at least 2).
	MaxConns int
	// Identity labels the containers this client makes. Every connection
	// of one worker shares the worker's identity; when it is zero, the
	// client makes one from Owner and PID.
	Identity Identity
	// Owner scopes the containers this worker sees and acts on
	// (DefaultOwner when empty).
	Owner string
	// PID is the worker's process id, as labelled on its containers.
	PID int
	// SSH is how ssh:// URIs log in and check host keys.
	SSH SSHOptions
	// SharedImages are the operator's base images (names or ids) that
	// every owner sees and uses but none changes (images.go).
	SharedImages []string
	Log          zerolog.Logger
}

// DefaultName is the name of the connection calls use when they name none,
// unless it comes from Podman's own connection list under its own name.
const DefaultName = "default"

// New prepares a connection to uri (unix://PATH, a bare PATH,
// ssh://[USER@]HOST[:PORT]/PATH or tcp://HOST:PORT) without dialling yet.
func New(uri string, opts Options) (*Client, error) {
	if strings.HasPrefix(uri, "/") {
		uri = "unix://" + uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("podman socket %q is not a URL or a path: %w", uri, err)
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	id := opts.Identity
	if id.Instance == "" {
		if opts.Owner == "" {
			opts.Owner = DefaultOwner
		}
		id = Self(opts.Owner, opts.PID)
	}
	log := opts.Log
	c := &Client{name: opts.Name, uri: uri, url: u, log: log, maxConns: max(opts.MaxConns, 2), Identity: id, closed: make(chan struct{})}
	switch u.Scheme {
	case "unix":
		path, ok := SocketPath(uri)
		if !ok {
			return nil, fmt.Errorf("podman socket %q names no file: give unix:///PATH or an absolute PATH", uri)
		}
		c.url = &url.URL{Scheme: "unix", Path: path}
		dialer := net.Dialer{Timeout: 5 * time.Second}
		c.dialSocket = func(ctx context.Context) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
	case "ssh":
		if c.ssh, err = newSSHDialer(u, opts.SSH, log); err != nil {
			return nil, fmt.Errorf("podman socket %q: %w", u.Redacted(), err)
		}
		c.dialSocket = c.ssh.DialContext
	case "tcp":
	default:
		return nil, fmt.Errorf("podman socket %q: only unix:// paths, ssh:// hosts and tcp:// addresses are supported", uri)
	}
	c.sharedImages = map[string]bool{}
	for _, ref := range opts.SharedImages {
		n, err := NormalizeImageRef(ref)
		if err != nil {
			return nil, fmt.Errorf("shared image: %w", err)
		}
		c.sharedImages[n] = true
	}
	c.Owned = newOwned(c, log)
	return c, nil
}

// URI is the socket the worker talks to, as it appears in messages.
func (c *Client) URI() string { return c.uri }

// Name is the connection's name, as calls choose it.
func (c *Client) Name() string { return c.name }

// Connect dials Podman now. An error is not fatal: calls retry later.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.Context(ctx)
	return err
}

// Context returns ctx carrying the bindings' connection, connecting first
// when needed. Cancelling ctx cancels the call; the connection stays. No
// lock is held over network I/O: one attempt connects for everybody, and
// each caller waits for it at most until its own ctx ends.
func (c *Client) Context(ctx context.Context) (context.Context, error) {
	c.mu.Lock()
	conn := c.conn
	if conn != nil && c.down.Load() {
		// The service went away since the last call. When it is back,
		// reconnect from scratch, so that what the bindings learnt about
		// the old service (its API version) is not kept after an upgrade
		// and restart.
		conn, c.conn = nil, nil
	}
	if conn != nil {
		c.mu.Unlock()
		return mergedContext{Context: ctx, values: conn, client: c}, nil
	}
	a := c.attempt
	if a == nil {
		a = &attempt{done: make(chan struct{})}
		c.attempt = a
		go c.connect(a)
	}
	c.mu.Unlock()

	select {
	case <-a.done:
	case <-ctx.Done():
		return nil, c.unavailable(fmt.Errorf("still connecting when the call ended: %w", context.Cause(ctx)))
	}
	if a.err != nil {
		return nil, a.err
	}
	return mergedContext{Context: ctx, values: a.conn, client: c}, nil
}

// connect makes one connection attempt and publishes its outcome. Before
// any call gets the new connection, it clears what workers of the same
// owner left behind (sweep): leftovers never block a name or fill a disk
// for longer than it takes Podman to answer again.
func (c *Client) connect(a *attempt) {
	conn, err := c.dial()
	if err == nil {
		c.sweep(conn)
	}
	c.mu.Lock()
	a.conn, a.err = conn, err
	if err == nil {
		c.conn = conn
		c.down.Store(false)
	} else {
		c.down.Store(true)
	}
	c.attempt = nil
	c.mu.Unlock()
	close(a.done)
	if err == nil {
		c.log.Info().Str("socket", c.uri).Str("api_version", bindings.ServiceVersion(conn).String()).Msg("connected to podman")
	}
}

func (c *Client) dial() (context.Context, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := c.probe(ctx); err != nil {
		return nil, c.unavailable(err)
	}
	// Only the connection's values are used afterwards, so its context
	// ending here does not matter.
	var conn context.Context
	var err error
	if c.dialSocket == nil {
		conn, err = bindings.NewConnection(ctx, c.uri)
	} else {
		conn, err = newBindingsConnection(ctx, c.url, c.transport())
	}
	if err != nil {
		return nil, c.unavailable(err)
	}
	return conn, nil
}

// Close stops the watch for Podman's return (see Owned) and closes the SSH
// connection of an ssh:// URI; a local socket needs no closing.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		if c.ssh != nil {
			c.ssh.Close()
		}
	})
}

// watchReturn reconnects once Podman answers again, while the worker still
// has containers to remove (Owned.remove failed with Unavailable): the
// sweep on reconnection removes them, without waiting for the next call
// or for the worker's exit.
func (c *Client) watchReturn() {
	if !c.watching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.watching.Store(false)
		for wait := 500 * time.Millisecond; c.Owned.unremoved() > 0; wait = min(2*wait, 5*time.Second) {
			select {
			case <-c.closed:
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
			_ = c.Connect(ctx)
			cancel()
		}
	}()
}

// detached runs clean-up work (killing and removing containers) that must
// happen even when the call that started it was cancelled, within its own
// timeout.
func (c *Client) detached(timeout time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pctx, err := c.Context(ctx)
	if err != nil {
		return err
	}
	return fn(pctx)
}

// probe dials the socket once, so that a dead service is reported in
// microseconds rather than after the bindings' retries. Over SSH that is
// one channel of the warm SSH connection (made first when there is none).
func (c *Client) probe(ctx context.Context) error {
	if c.dialSocket == nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := c.dialSocket(pctx)
	if err != nil {
		return err
	}
	return conn.Close()
}

// transport replaces the bindings' default one, which keeps only two idle
// connections (so ten concurrent calls would redial on nearly every call)
// and never notices that the service went away. A local socket and an SSH
// host get the same transport; only the dial differs.
func (c *Client) transport() http.RoundTripper {
	return &noBlindRetry{next: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := c.dialSocket(ctx)
			if err != nil && ctx.Err() == nil {
				c.down.Store(true)
			}
			return conn, err
		},
		DisableCompression:  true,
		MaxIdleConns:        c.maxConns * 2,
		MaxIdleConnsPerHost: c.maxConns * 2,
		// A socket-activated service closes idle connections after twice
		// its idle timeout (at least 1 s) and may exit. Dialing a unix
		// socket costs microseconds, so idle connections are dropped
		// before that rather than risk a request on one being closed.
		IdleConnTimeout: time.Second,
	}}
}

func (c *Client) unavailable(err error) *fault.Error {
	var hostKey *HostKeyError
	switch {
	case errors.As(err, &hostKey):
		// Not a Podman that is away: a host the worker refuses to trust.
		return fault.Wrap(fault.KindUnavailable, err, "Podman at %s is not used: %s", c.uri, hostKey.Error()).With("socket", c.uri)
	case c.ssh != nil:
		return fault.Wrap(fault.KindUnavailable, err,
			"Podman is not reachable at %s: %s. Check that sshd on %s lets %s in and that Podman serves %s there (systemctl enable --now podman.socket, or podman system service --time=0 unix://%s)",
			c.uri, rootCause(err), c.ssh.addr, c.ssh.user, c.ssh.socket, c.ssh.socket).With("socket", c.uri)
	}
	return fault.Wrap(fault.KindUnavailable, err,
		"Podman is not reachable at %s: %s. Start it (podman system service --time=0 %s) or point the worker at a running one with --socket or PODMAN_SOCKET_PATH",
		c.uri, rootCause(err), c.uri).With("socket", c.uri)
}

// Ping calls /_ping and returns its headers.
func (c *Client) Ping(ctx context.Context) (http.Header, error) {
	client, err := bindings.GetClient(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := client.DoRequest(ctx, nil, http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return nil, c.Classify(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if !resp.IsSuccess() {
		return nil, fmt.Errorf("podman answered /_ping with %s", resp.Status)
	}
	return resp.Header, nil
}

// VersionFromHeaders reads the service's version from a /_ping answer.
// /version costs ~220 ms on Podman 4.3 because the service asks conmon and
// the runtime for their versions every time; /_ping costs ~0.1 ms and its
// Server header ("Libpod/4.3.1 (linux)") names the same version.
func VersionFromHeaders(h http.Header) (string, error) {
	if v, ok := strings.CutPrefix(h.Get("Server"), "Libpod/"); ok {
		v, _, _ = strings.Cut(v, " ")
		if v != "" {
			return v, nil
		}
	}
	if v := h.Get("Libpod-Api-Version"); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("the service's /_ping answer names no Libpod version (Server: %q)", h.Get("Server"))
}

// Status is how the service answered one ping, for health and worker.ready.
type Status struct {
	Connected bool    `json:"connected"`
	Socket    string  `json:"socket"`
	Version   string  `json:"version,omitempty"`
	LatencyMs float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// Status pings the service once, within ctx, and says how it went.
func (c *Client) Status(ctx context.Context) Status {
	st := Status{Socket: c.uri}
	start := time.Now()
	pctx, err := c.Context(ctx)
	if err == nil {
		var h http.Header
		if h, err = c.Ping(pctx); err == nil {
			st.Version, _ = VersionFromHeaders(h)
		}
	}
	st.LatencyMs = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		st.Error = c.Classify(err).Error()
		return st
	}
	st.Connected = true
	return st
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
// the call's cancellation must reach the HTTP request. It also answers the
// Client itself (From), so a handler acts through the connection its call
// chose.
type mergedContext struct {
	context.Context
	values context.Context
	client *Client
}

type clientKey struct{}

func (c mergedContext) Value(key any) any {
	if key == (clientKey{}) {
		return c.client
	}
	// The connection's own values first: a context made by one client's
	// Context from another's (copy_image) talks to the newer one.
	if v := c.values.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// From answers the Client whose Context made ctx, or nil.
func From(ctx context.Context) *Client {
	c, _ := ctx.Value(clientKey{}).(*Client)
	return c
}

// local says whether Podman runs on the worker's own host (a unix
// socket), where the worker can see its cgroups.
func (c *Client) local() bool { return c.url.Scheme == "unix" }
