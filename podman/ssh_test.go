package podman_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/ed25519"
	"crypto/rand"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/internal/testbuf"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// sshHost is a private Podman service reached through a private sshd.
type sshHost struct {
	svc  *podmantest.Service
	sshd *podmantest.SSHD
}

func startSSHHost(t *testing.T) *sshHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the private Podman service and sshd run as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, err := podmantest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Error(err)
		}
	})
	sshd := podmantest.SSHDFor(t)
	return &sshHost{svc: svc, sshd: sshd}
}

// logCount counts the log lines in logs that carry a message.
func logCount(logs *testbuf.Buffer, msg string) int {
	return strings.Count(logs.String(), `"message":"`+msg+`"`)
}

func statusWithin(c *podman.Client, d time.Duration) podman.Status {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Status(ctx)
}

// One SSH connection carries every call, concurrent or not; when the host
// goes away calls answer Unavailable, and once it is back the next call
// makes a new SSH connection by itself.
func TestSSHWarmConnectionAndRedial(t *testing.T) {
	h := startSSHHost(t)
	logs := &testbuf.Buffer{}
	c, err := podman.New(h.sshd.URI(h.svc.Socket), podman.Options{
		SSH: podman.SSHOptions{Identity: h.sshd.Identity, KnownHosts: h.sshd.KnownHosts},
		Log: zerolog.New(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var wg sync.WaitGroup
	statuses := make(chan podman.Status, 40)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- statusWithin(c, 30*time.Second)
		}()
	}
	wg.Wait()
	for i := 0; i < 20; i++ {
		statuses <- statusWithin(c, 30*time.Second)
	}
	close(statuses)
	for st := range statuses {
		if !st.Connected || st.Version == "" {
			t.Fatalf("a ping over ssh: %+v", st)
		}
	}
	if n := logCount(logs, "ssh connection made"); n != 1 {
		t.Errorf("40 pings (20 at once) made %d SSH connections, want 1", n)
	}

	h.sshd.Kill()
	st := statusWithin(c, 10*time.Second)
	if st.Connected || !strings.Contains(st.Error, "Podman is not reachable at "+c.URI()) {
		t.Errorf("with sshd killed: %+v, want not connected, naming the URI", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.sshd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := statusWithin(c, 30*time.Second); !st.Connected {
		t.Errorf("with sshd back: %+v, want the next call to reconnect", st)
	}
	if n := logCount(logs, "ssh connection made"); n != 2 {
		t.Errorf("%d SSH connections after one restart of sshd, want 2", n)
	}
}

// A host that accepts TCP connections and never speaks costs each call its
// own deadline, not the connection attempt's: every call ends because its
// context did, however many wait.
func TestSSHHostThatNeverAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn) // accepted, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if _, err := podmantest.WriteKey(key); err != nil {
		t.Fatal(err)
	}
	c, err := podman.New("ssh://root@"+l.Addr().String()+"/run/podman/podman.sock", podman.Options{
		SSH: podman.SSHOptions{Identity: key, KnownHosts: filepath.Join(dir, "known_hosts")}, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := c.Context(ctx)
			if !errors.Is(err, context.DeadlineExceeded) || c.KindOf(err) != fault.KindUnavailable {
				t.Errorf("a call with a 200 ms deadline to a host that never answers: %v; want Unavailable because its own deadline passed", err)
			}
		}()
	}
	wg.Wait()
}

// Host keys are checked against the known_hosts file: an unknown or a
// changed key is refused with a message that names the host and the file,
// unless the operator turned the check off.
func TestSSHHostKeys(t *testing.T) {
	h := startSSHHost(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	otherKey, err := podmantest.WriteKey(filepath.Join(dir, "other-key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sshd.WriteKnownHosts(other, otherKey); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name       string
		knownHosts string
		insecure   bool
		want       []string // in the error; nil: connected
		identity   string   // "" for the key sshd lets in
	}{
		{"listed", h.sshd.KnownHosts, false, nil, ""},
		{"a key sshd does not let in", h.sshd.KnownHosts, false, []string{"sshd at " + h.sshd.Addr + " refused user root with the key " + filepath.Join(dir, "other-key")}, filepath.Join(dir, "other-key")},
		{"unknown", empty, false, []string{"ssh host key of " + h.sshd.Addr + " is unknown", "is not in " + empty, "ssh-keyscan -p " + h.sshd.Port + " 127.0.0.1"}, ""},
		{"no known_hosts file", missing, false, []string{"ssh host key of " + h.sshd.Addr + " cannot be checked", missing + " does not exist"}, ""},
		{"changed", other, false, []string{"ssh host key of " + h.sshd.Addr + " has CHANGED", other + ":1", ssh.FingerprintSHA256(h.sshd.HostKey), "ssh-keygen -R '[127.0.0.1]:" + h.sshd.Port + "' -f " + other}, ""},
		{"unknown, check turned off", empty, true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			identity := h.sshd.Identity
			if tt.identity != "" {
				identity = tt.identity
			}
			c, err := podman.New(h.sshd.URI(h.svc.Socket), podman.Options{
				SSH: podman.SSHOptions{Identity: identity, KnownHosts: tt.knownHosts, InsecureIgnoreHostKey: tt.insecure},
				Log: zerolog.Nop(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st := statusWithin(c, 30*time.Second)
			if tt.want == nil {
				if !st.Connected {
					t.Errorf("known_hosts %s: %+v, want connected", tt.knownHosts, st)
				}
				return
			}
			if st.Connected {
				t.Fatalf("known_hosts %s: connected, want refused", tt.knownHosts)
			}
			t.Logf("known_hosts %s: %s", tt.knownHosts, st.Error)
			for _, w := range tt.want {
				if !strings.Contains(st.Error, w) {
					t.Errorf("known_hosts %s: error %q\nwant it to contain %q", tt.knownHosts, st.Error, w)
				}
			}
		})
	}
}

// Settings that can never work stop the worker at start-up, each with a
// message that says what to write instead.
func TestSSHConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if _, err := podmantest.WriteKey(key); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.WriteFile(locked, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	notKey := filepath.Join(dir, "not-a-key")
	if err := os.WriteFile(notKey, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		uri, identity string
		want          string
	}{
		{"ssh://root@host", key, "no socket path after the host: write ssh://root@host/run/podman/podman.sock"},
		{"ssh://root@host/", key, "no socket path"},
		{"ssh://root:pw@host/run/podman/podman.sock", key, "a password in an ssh:// URI is not supported"},
		{"ssh://root@host/run/podman/podman.sock", "", "no identity to log in with: pass --identity FILE"},
		{"ssh://root@host/run/podman/podman.sock", filepath.Join(dir, "nope"), "identity " + filepath.Join(dir, "nope") + ": open"},
		{"ssh://root@host/run/podman/podman.sock", locked, "is protected by a passphrase"},
		{"ssh://root@host/run/podman/podman.sock", notKey, "is not an SSH private key"},
		{"ftp://host/x", key, "only unix:// paths, ssh:// hosts and tcp:// addresses are supported"},
	}
	for _, tt := range tests {
		_, err := podman.New(tt.uri, podman.Options{SSH: podman.SSHOptions{Identity: tt.identity}, Log: zerolog.Nop()})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), ":pw@") {
			t.Errorf("%s with identity %q: %v\nwant an error containing %q (and no password)", tt.uri, tt.identity, err, tt.want)
		}
	}
}
