package podmantest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshdPath is Debian's OpenSSH server (package openssh-server). sshd
// re-executes itself for every connection, so it needs its absolute path.
const sshdPath = "/usr/sbin/sshd"

// SSHD is a private OpenSSH server on 127.0.0.1 and a free port: a Podman
// host reached over SSH without leaving the machine. Its folder holds
// everything it uses, made by the test: its configuration, its host key,
// the one key it lets in (for root), a known_hosts file that lists its
// host key, and its log. It never reads /etc/ssh, and nothing is written
// to /root/.ssh.
//
// Why a mount namespace: as root, sshd insists on its privilege separation
// folder /run/sshd, which only exists on machines whose ssh service was
// started. The harness runs sshd under `unshare -m` with a tmpfs of its own
// on /run holding that folder, so the machine's /run is left as it was.
//
// Why these settings: StrictModes off, because the files live in a temp
// folder under the world-writable /tmp; PAM off, so no account rules of
// the machine get in the way of a key login; AllowTcpForwarding local as
// well as AllowStreamLocalForwarding, because OpenSSH checks the same
// permission for a channel to a unix socket as for one to a TCP port.
type SSHD struct {
	// Dir is the server's temp folder.
	Dir string
	// Addr is 127.0.0.1:PORT.
	Addr string
	// Port is Addr's port.
	Port string
	// Identity is the private key file of the one key the server lets in.
	Identity string
	// KnownHosts is a known_hosts file that lists the server's host key as
	// it was when StartSSHD returned (NewHostKey does not update it).
	KnownHosts string
	// HostKey is the server's current host key.
	HostKey ssh.PublicKey

	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// SSHDFor starts a private sshd for a test or benchmark (StartSSHD, within
// a minute) and stops it when tb ends, first logging sshd's own log if tb
// failed. It is the one way the tests start an sshd.
func SSHDFor(tb testing.TB) *SSHD {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sshd, err := StartSSHD(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("sshd log:\n%s", sshd.Log())
		}
		if err := sshd.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return sshd
}

// StartSSHD starts a private sshd and waits until it answers (up to 10 s,
// or until ctx ends). It needs root, as sshd does to log users in. On
// failure nothing is left behind.
func StartSSHD(ctx context.Context) (*SSHD, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("podmantest: sshd needs root")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		return nil, fmt.Errorf("podmantest: %s is missing (%v): run `make deps` or `apt-get install -y openssh-server`", sshdPath, err)
	}
	dir, err := os.MkdirTemp("/tmp", "pw-ssh-")
	if err != nil {
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	d := &SSHD{Dir: dir, Identity: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"), logPath: filepath.Join(dir, "sshd.log")}
	fail := func(err error) (*SSHD, error) {
		d.mu.Lock()
		d.killLocked()
		d.mu.Unlock()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("podmantest: sshd: %w", err)
	}
	clientKey, err := WriteKey(d.Identity)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientKey), 0o600); err != nil {
		return fail(err)
	}
	if d.HostKey, err = WriteKey(filepath.Join(dir, "host_ed25519")); err != nil {
		return fail(err)
	}
	// A port that was free a moment ago may be taken by the time sshd
	// binds it: try a few.
	for try := 0; ; try++ {
		if d.Port, err = freePort(); err != nil {
			return fail(err)
		}
		d.Addr = net.JoinHostPort("127.0.0.1", d.Port)
		d.mu.Lock()
		err = d.startLocked(ctx)
		d.mu.Unlock()
		if err == nil {
			break
		}
		if try == 2 || ctx.Err() != nil {
			return fail(err)
		}
	}
	if err := d.WriteKnownHosts(d.KnownHosts, d.HostKey); err != nil {
		return fail(err)
	}
	return d, nil
}

// URI is the ssh:// URI of a unix socket on this "host", as root.
func (d *SSHD) URI(socket string) string {
	return "ssh://root@" + d.Addr + socket
}

// WriteKnownHosts writes a known_hosts file at path that lists key for
// this server's address.
func (d *SSHD) WriteKnownHosts(path string, key ssh.PublicKey) error {
	return os.WriteFile(path, []byte(knownhosts.Line([]string{d.Addr}, key)+"\n"), 0o600)
}

// Kill ends the server and every SSH connection it serves at once (SIGKILL),
// as a host that goes down does. Its folder stays for Start.
func (d *SSHD) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killLocked()
}

// Start starts the server again (after Kill), on the same port and keys.
func (d *SSHD) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return errors.New("podmantest: sshd: Start after Stop")
	}
	d.killLocked()
	return d.startLocked(ctx)
}

// NewHostKey is a reinstalled host: the server is killed, given a new host
// key and started again on the same port. KnownHosts still lists the old
// key.
func (d *SSHD) NewHostKey(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.killLocked()
	key, err := WriteKey(filepath.Join(d.Dir, "host_ed25519"))
	if err != nil {
		return err
	}
	d.HostKey = key
	return d.startLocked(ctx)
}

// Stop kills the server and its connections and removes its folder.
// Calling it again does nothing.
func (d *SSHD) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	d.stopped = true
	d.killLocked()
	return os.RemoveAll(d.Dir)
}

// Log is the server's log so far, for a failing test's message.
func (d *SSHD) Log() string { return tail(d.logPath, 8192) }

func (d *SSHD) startLocked(ctx context.Context) error {
	conf := filepath.Join(d.Dir, "sshd_config")
	settings := []string{
		"ListenAddress " + d.Addr,
		"HostKey " + filepath.Join(d.Dir, "host_ed25519"),
		"AuthorizedKeysFile " + filepath.Join(d.Dir, "authorized_keys"),
		"PidFile none",
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AuthenticationMethods publickey",
		"PermitRootLogin prohibit-password",
		"AllowStreamLocalForwarding local",
		"AllowTcpForwarding local",
		"X11Forwarding no",
		"UseDNS no",
		"LogLevel VERBOSE",
	}
	if err := os.WriteFile(conf, []byte(strings.Join(settings, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== podmantest: starting sshd on %s at %s ===\n", d.Addr, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
		`mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/sshd && exec "$0" -D -e -f "$1"`, sshdPath, conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, the kernel kills sshd (the listener; its
	// connections end with their TCP peer).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting sshd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	d.cmd, d.done = cmd, done
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if banner(d.Addr) {
			return nil
		}
		select {
		case <-done:
			d.cmd = nil
			return fmt.Errorf("sshd exited (%s); %s says:\n%s", cmd.ProcessState, d.logPath, d.Log())
		case <-wctx.Done():
			d.killLocked()
			return fmt.Errorf("sshd did not answer on %s: %w; %s says:\n%s", d.Addr, wctx.Err(), d.logPath, d.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killLocked SIGKILLs sshd and every process under it (one pair per SSH
// connection, each in a session of its own, so not in sshd's process
// group), and waits for sshd to be reaped.
func (d *SSHD) killLocked() {
	if d.cmd == nil {
		return
	}
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP) // no new connections while the tree is read
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}

// descendants are the processes under pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Field 4 is the parent, after the command in parentheses.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// banner reports whether an SSH server answers at addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// WriteKey makes an ed25519 key, writes its private half to path in
// OpenSSH's format (mode 0600, as ssh requires) and answers the public half.
func WriteKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "podmantest")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// freePort is a TCP port of 127.0.0.1 that nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}
