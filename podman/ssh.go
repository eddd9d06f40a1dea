package podman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// Why the worker dials SSH itself rather than through the bindings
// (bindings.NewConnectionWithIdentity and go.podman.io/common/pkg/ssh):
//   - they trust a host they do not know and append its key to
//     ~/.ssh/known_hosts (trust on first use); the worker refuses it;
//   - the known_hosts file is always ~/.ssh/known_hosts;
//   - without an identity they fall back to ssh-agent, then to a password
//     prompt on the terminal, which on a worker is the protocol's stdin;
//   - the SSH connection is made once and never again: when it breaks,
//     every later request fails until the process restarts, and its dials
//     ignore the request's context.
//
// Here one SSH connection per Podman host is kept warm and shared by every
// HTTP connection to the service (each is a direct-streamlocal channel to
// the remote unix socket, which is what `ssh -L local.sock:remote.sock`
// does), plugged into the same transport as a local unix socket. When the
// SSH connection breaks, the next dial makes a new one: one attempt for
// every caller, each waiting at most until its own deadline.

// SSHOptions say how the worker logs in to ssh:// hosts and how it checks
// that a host is the one it means.
type SSHOptions struct {
	// Identity is the private key file (--identity, CONTAINER_SSHKEY). It
	// must not be protected by a passphrase: nobody is there to type it.
	Identity string
	// KnownHosts is the known_hosts file that host keys are checked
	// against; "" means ~/.ssh/known_hosts.
	KnownHosts string
	// InsecureIgnoreHostKey accepts any host key: the operator's explicit
	// choice (--insecure-ignore-host-key), for throwaway hosts only.
	InsecureIgnoreHostKey bool
}

const (
	// sshConnectTimeout bounds one SSH connection attempt (TCP connect
	// and handshake). Callers wait at most their own deadline for it.
	sshConnectTimeout = 10 * time.Second
	// sshKeepAlive is how often an idle SSH connection is checked, and how
	// long the host has to answer. A host that vanished without closing
	// the TCP connection (powered off, network cut) is noticed within twice
	// this, after which the next call redials instead of waiting on a dead
	// connection.
	sshKeepAlive = 15 * time.Second
)

// sshDialer reaches one remote unix socket through one warm SSH connection.
type sshDialer struct {
	addr       string // host:port
	user       string
	socket     string // the remote unix socket's path
	signer     ssh.Signer
	identity   string // the key file, for messages
	knownHosts string // "" with insecure
	insecure   bool
	log        zerolog.Logger

	mu      sync.Mutex
	client  *sshConn
	attempt *sshAttempt
	closed  bool
}

// sshConn is one SSH connection; done closes once it has ended.
type sshConn struct {
	*ssh.Client
	done chan struct{}
}

// sshAttempt is one SSH connection attempt; done closes when client or err
// is set.
type sshAttempt struct {
	done   chan struct{}
	client *sshConn
	err    error
}

// newSSHDialer checks an ssh://[USER@]HOST[:PORT]/PATH URI and reads the
// identity now, so that a configuration that can never work stops the
// worker at start-up with a message, rather than failing every call.
func newSSHDialer(u *url.URL, opts SSHOptions, log zerolog.Logger) (*sshDialer, error) {
	if _, set := u.User.Password(); set {
		return nil, errors.New("a password in an ssh:// URI is not supported (it would show in logs and health): log in with a key (--identity)")
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host: write ssh://USER@HOST[:PORT]/path/to/podman.sock")
	}
	if u.Path == "" || u.Path == "/" {
		with := url.URL{Scheme: "ssh", User: u.User, Host: u.Host, Path: "/run/podman/podman.sock"}
		return nil, fmt.Errorf("no socket path after the host: write %s for a rootful Podman, or /run/user/UID/podman/podman.sock for a rootless one", with.Redacted())
	}
	d := &sshDialer{socket: u.Path, insecure: opts.InsecureIgnoreHostKey, identity: opts.Identity, log: log}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	d.addr = net.JoinHostPort(u.Hostname(), port)
	if d.user = u.User.Username(); d.user == "" {
		me, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("no user in the URI and the current user is unknown (%v): write ssh://USER@%s%s", err, u.Host, u.Path)
		}
		d.user = me.Username
	}
	if opts.Identity == "" {
		return nil, errors.New("no identity to log in with: pass --identity FILE (or CONTAINER_SSHKEY), or NAME=URI,IDENTITY with --connection")
	}
	key, err := os.ReadFile(opts.Identity)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", opts.Identity, err)
	}
	if d.signer, err = ssh.ParsePrivateKey(key); err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("identity %s is protected by a passphrase, which the worker cannot type: use a key without one (ssh-keygen -p -N '' -f %s, on a copy)", opts.Identity, opts.Identity)
		}
		return nil, fmt.Errorf("identity %s is not an SSH private key: %w", opts.Identity, err)
	}
	if !d.insecure {
		d.knownHosts = opts.KnownHosts
		if d.knownHosts == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("no home folder for ~/.ssh/known_hosts (%v): pass --known-hosts FILE", err)
			}
			d.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
		}
	}
	return d, nil
}

// DialContext opens a connection to the remote socket: a channel of the
// warm SSH connection, made first when there is none. It fits
// http.Transport.DialContext. When the warm SSH connection turns out to
// have ended (the host restarted sshd, or went away and came back), it
// makes a new one at once rather than fail the call.
func (d *sshDialer) DialContext(ctx context.Context) (net.Conn, error) {
	for {
		client, fresh, err := d.sshClient(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := client.open(ctx, d.socket)
		var refused *ssh.OpenChannelError
		switch {
		case err == nil:
			return conn, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &refused):
			// sshd is there but could not connect to the socket: Podman
			// is not serving there (or forwarding is off).
			err = fmt.Errorf("sshd at %s could not connect to %s (%s): is Podman serving there, and does sshd allow it (AllowStreamLocalForwarding yes)?", d.addr, d.socket, refused.Message)
			return nil, &net.OpError{Op: "dial", Net: "ssh", Err: err}
		}
		// The SSH connection itself ended: forget it, and make a new one
		// unless this one was just made.
		d.drop(client)
		if fresh {
			return nil, &net.OpError{Op: "dial", Net: "ssh", Err: err}
		}
	}
}

// open opens a channel to a unix socket on the host, within ctx.
//
// Why not ssh.Client.DialContext: a channel opened on a connection that has
// just ended can wait for the host's answer forever (the connection's
// reader is gone, and nothing closes the new channel), which would cost the
// call its whole deadline. Here the wait also ends when the connection
// does. (The open that never ends stays behind as a blocked goroutine: x/crypto
// gives no way to end it. It takes the rare moment when a channel is opened
// just as the connection ends.)
func (c *sshConn) open(ctx context.Context, socket string) (net.Conn, error) {
	select {
	case <-c.done:
		return nil, errSSHClosed
	default:
	}
	type result struct {
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		conn, err := c.Dial("unix", socket)
		res <- result{conn, err}
	}()
	select {
	case r := <-res:
		return r.conn, r.err
	case <-ctx.Done():
	case <-c.done:
	}
	// Whatever comes of the open now, nobody takes it.
	go func() {
		if r := <-res; r.conn != nil {
			_ = r.conn.Close()
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errSSHClosed
}

var errSSHClosed = errors.New("the ssh connection ended")

// sshClient returns the warm SSH connection, or waits for the one attempt
// under way (starting it if there is none) until ctx ends. fresh says the
// connection was made for this call.
func (d *sshDialer) sshClient(ctx context.Context) (client *sshConn, fresh bool, err error) {
	d.mu.Lock()
	if d.client != nil {
		c := d.client
		d.mu.Unlock()
		return c, false, nil
	}
	if d.closed {
		d.mu.Unlock()
		return nil, false, net.ErrClosed
	}
	a := d.attempt
	if a == nil {
		a = &sshAttempt{done: make(chan struct{})}
		d.attempt = a
		go d.connect(a)
	}
	d.mu.Unlock()
	select {
	case <-a.done:
		return a.client, true, a.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// connect makes one SSH connection attempt, on its own deadline rather
// than any caller's, and publishes the outcome.
func (d *sshDialer) connect(a *sshAttempt) {
	var client *sshConn
	c, err := d.dial()
	if err == nil {
		client = &sshConn{Client: c, done: make(chan struct{})}
		go func() {
			err := c.Wait()
			close(client.done)
			d.drop(client)
			d.log.Info().Str("ssh", d.addr).AnErr("reason", err).Msg("ssh connection closed; the next call makes a new one")
		}()
		go d.keepAlive(client)
	}
	d.mu.Lock()
	if err == nil && d.closed {
		_ = client.Close()
		client, err = nil, net.ErrClosed
	}
	if err == nil {
		d.client = client
	} else {
		err = &net.OpError{Op: "dial", Net: "ssh", Err: err}
	}
	a.client, a.err = client, err
	d.attempt = nil
	d.mu.Unlock()
	close(a.done)
}

// dial connects to the host, checks its key and logs in.
func (d *sshDialer) dial() (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sshConnectTimeout)
	defer cancel()
	callback, algorithms, err := d.hostKeys()
	if err != nil {
		return nil, err
	}
	var tcp net.Dialer
	conn, err := tcp.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	// The handshake takes no context: the deadline bounds it instead.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	var hostKey ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: d.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(d.signer)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			hostKey = key
			return callback(host, remote, key)
		},
		// Only the algorithms of the keys known for this host: otherwise
		// the server may present another of its keys first, which would be
		// taken for a changed key.
		HostKeyAlgorithms: algorithms,
	}
	sconn, chans, reqs, err := ssh.NewClientConn(quickAck(conn), d.addr, cfg)
	if err != nil {
		_ = conn.Close()
		var hk *HostKeyError
		switch {
		case errors.As(err, &hk):
			return nil, hk
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("sshd at %s refused user %s with the key %s: add its public key to that user's ~/.ssh/authorized_keys on the host", d.addr, d.user, d.identity)
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	d.log.Info().Str("ssh", d.addr).Str("user", d.user).Str("host_key", ssh.FingerprintSHA256(hostKey)).Msg("ssh connection made")
	return ssh.NewClient(sconn, chans, reqs), nil
}

// quickAck makes the TCP connection acknowledge what it receives at once.
//
// Why: sshd turns Nagle's algorithm off only for sessions with a terminal,
// not for forwarded channels, so when it has two small packets to send in a
// row (a container's output on the attach channel, then the answer to
// start on another) the second waits for the first to be acknowledged, and
// Linux delays that acknowledgement by up to 40 ms. Measured here: a run
// over SSH spent ~40 ms more in start and again in waiting for the exit.
// The client cannot turn Nagle off on the server; it can acknowledge at
// once. Linux drops back to delayed acknowledgements on its own, so the
// option is set again after every read.
func quickAck(conn net.Conn) net.Conn {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return conn
	}
	return &quickAckConn{TCPConn: tcp, raw: raw}
}

type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return n, err
}

// hostKeys reads the known_hosts file for each connection attempt, so that
// an operator who adds or fixes a key needs no restart.
func (d *sshDialer) hostKeys() (ssh.HostKeyCallback, []string, error) {
	if d.insecure {
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	db, err := knownhosts.NewDB(d.knownHosts)
	if errors.Is(err, os.ErrNotExist) {
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			return &HostKeyError{Host: d.addr, File: d.knownHosts, Got: key, missingFile: true}
		}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading known hosts %s: %w", d.knownHosts, err)
	}
	check := db.HostKeyCallback()
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var keyErr *xknownhosts.KeyError
		if errors.As(err, &keyErr) {
			return &HostKeyError{Host: d.addr, File: d.knownHosts, Got: key, Want: keyErr.Want}
		}
		return err
	}, db.HostKeyAlgorithms(d.addr), nil
}

// keepAlive asks the host for an answer every sshKeepAlive and closes the
// connection when none comes in time.
func (d *sshDialer) keepAlive(client *sshConn) {
	tick := time.NewTicker(sshKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-client.done:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case err := <-answered:
			if err == nil {
				continue
			}
		case <-time.After(sshKeepAlive):
			d.log.Warn().Str("ssh", d.addr).Msg("the ssh host did not answer a keepalive; closing the connection")
		case <-client.done:
			return
		}
		_ = client.Close()
		return
	}
}

// drop forgets a broken SSH connection (if it is still the warm one) and
// closes it.
func (d *sshDialer) drop(client *sshConn) {
	d.mu.Lock()
	if d.client == client {
		d.client = nil
	}
	d.mu.Unlock()
	_ = client.Close()
}

// Close closes the SSH connection; later dials fail.
func (d *sshDialer) Close() {
	d.mu.Lock()
	d.closed = true
	client := d.client
	d.client = nil
	d.mu.Unlock()
	if client != nil {
		_ = client.Close()
	}
}

// HostKeyError is a host key the worker refuses: unknown to the known_hosts
// file (Want empty), or different from the key(s) it lists for the host.
type HostKeyError struct {
	Host string // host:port as dialled
	File string // the known_hosts file
	Got  ssh.PublicKey
	// Want are the keys the file knows for the host; empty when unknown.
	Want        []xknownhosts.KnownKey
	missingFile bool
}

func (e *HostKeyError) Error() string {
	fp := e.Got.Type() + " " + ssh.FingerprintSHA256(e.Got)
	host, port, _ := net.SplitHostPort(e.Host)
	entry := knownhosts.Normalize(e.Host)
	if len(e.Want) == 0 {
		what := "is unknown: it is not in " + e.File
		if e.missingFile {
			what = "cannot be checked: the known hosts file " + e.File + " does not exist"
		}
		return fmt.Sprintf("the ssh host key of %s %s. Check that %s is its fingerprint, then add it (ssh-keyscan -p %s %s >> %s), or choose the file with --known-hosts; --insecure-ignore-host-key skips the check",
			e.Host, what, fp, port, host, e.File)
	}
	var known []string
	for _, k := range e.Want {
		known = append(known, fmt.Sprintf("%s:%d (%s %s)", k.Filename, k.Line, k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
	}
	return fmt.Sprintf("the ssh host key of %s has CHANGED: it presented %s, but %s lists %s. Someone may be intercepting the connection, or the host was reinstalled; if the change is expected, remove the old key (ssh-keygen -R '%s' -f %s) and add the new one",
		e.Host, fp, e.File, strings.Join(known, ", "), entry, e.File)
}
