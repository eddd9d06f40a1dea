package podmantest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/podman-worker/podman-worker/podman"
	"golang.org/x/sys/unix"
)

// Activated is a Podman service started on demand the way systemd's
// podman.socket starts one: the listening socket outlives the service,
// the service is started (with LISTEN_FDS) when a client connects, and it
// exits by itself after its idle timeout, to be started again by the next
// connection. Recovery tests use it to check that calls after an idle
// period still succeed.
type Activated struct {
	Dir, Socket, URI string

	idle   string
	podman string
	conf   string
	file   *os.File // the listening socket, handed to each service
	ln     *net.UnixListener

	starts atomic.Int32
	mu     sync.Mutex
	proc   *podman.Process
	stop   chan struct{}
	done   chan struct{}
}

// StartActivated listens on a fresh socket; the service starts on the
// first connection and exits after idle (podman's --time, e.g. "2").
func StartActivated(idle string) (*Activated, error) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/tmp", "pw-sa-")
	if err != nil {
		return nil, err
	}
	a := &Activated{Dir: dir, Socket: filepath.Join(dir, "podman.sock"), idle: idle, podman: podman,
		conf: filepath.Join(root, "testdata", "containers.conf"), stop: make(chan struct{}), done: make(chan struct{})}
	a.URI = "unix://" + a.Socket
	if a.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: a.Socket, Net: "unix"}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if a.file, err = a.ln.File(); err != nil {
		a.ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	go a.loop()
	return a, nil
}

// Starts is how many times the service has been started.
func (a *Activated) Starts() int { return int(a.starts.Load()) }

// Running reports whether a service process is up now.
func (a *Activated) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil
}

// loop waits for a pending connection without accepting it, then runs a
// service on the listening socket until it exits, and again.
func (a *Activated) loop() {
	defer close(a.done)
	for {
		fds := []unix.PollFd{{Fd: int32(a.file.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		select {
		case <-a.stop:
			return
		default:
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n == 0 {
			continue
		}
		log, err := os.OpenFile(filepath.Join(a.Dir, "service.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return
		}
		proc, err := podman.StartService(context.Background(), podman.ServiceConfig{
			Podman: a.podman, Root: filepath.Join(a.Dir, "root"), RunRoot: filepath.Join(a.Dir, "runroot"),
			TmpDir: filepath.Join(a.Dir, "tmp"), Dir: a.Dir, Conf: a.conf, Socket: a.Socket,
			Listener: a.file, Idle: a.idle, Log: log, Pdeathsig: syscall.SIGKILL,
		})
		log.Close() // the service has its own copy
		if err != nil {
			return
		}
		a.starts.Add(1)
		a.mu.Lock()
		a.proc = proc
		a.mu.Unlock()
		<-proc.Done()
		a.mu.Lock()
		a.proc = nil
		a.mu.Unlock()
	}
}

// Close removes the service's containers, stops it and the listener, and
// removes its folder.
func (a *Activated) Close() error {
	if err := removeAllContainers(a.URI); err != nil {
		fmt.Fprintf(os.Stderr, "podmantest: removing containers: %v\n", err)
	}
	close(a.stop)
	a.mu.Lock()
	if a.proc != nil {
		a.proc.Stop(15 * time.Second)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		a.mu.Lock()
		if a.proc != nil {
			a.proc.Kill()
		}
		a.mu.Unlock()
		<-a.done
	}
	a.file.Close()
	a.ln.Close()
	if err := podman.UnmountUnder(a.Dir); err != nil {
		return err
	}
	return os.RemoveAll(a.Dir)
}

// WaitIdle waits until the service has exited by itself.
func (a *Activated) WaitIdle(ctx context.Context) error {
	for a.Running() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the service did not exit by its idle timeout: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
