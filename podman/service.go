package podman

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServiceConfig describes a `podman system service` to start: the worker's
// embedded service and the test harness's private ones are both started
// from one of these.
type ServiceConfig struct {
	// Podman is the podman binary; "" looks it up on PATH.
	Podman string
	// Root, RunRoot and TmpDir are the service's storage (--root,
	// --runroot, --tmpdir), so it never touches the machine's own store.
	Root, RunRoot, TmpDir string
	// Dir is the service's working directory: conmon (Podman 4.3 on cgroup
	// v1) writes its OOM marker to a relative "oom" there.
	Dir string
	// Scratch is the service's TMPDIR: Buildah keeps build bundles there
	// (else in /var/tmp) and leaves one behind for every cancelled build,
	// so the owner of the service removes it when the service stops.
	Scratch string
	// Conf is a containers.conf handed over as CONTAINERS_CONF; "" keeps
	// Podman's own settings.
	Conf string
	// Socket is the unix socket path to serve on.
	Socket string
	// Listener, when set, is a listening socket the service inherits as
	// fd 3 (socket activation, as systemd's podman.socket does); Socket is
	// then only where clients connect.
	Listener *os.File
	// Idle is --time: seconds without clients before the service exits;
	// "" means 0, never.
	Idle string
	// Log receives the service's stdout and stderr; nil discards them.
	Log io.Writer
	// Pdeathsig is sent to the service if the process that started it dies.
	Pdeathsig syscall.Signal
	// Home, when set, is the service's HOME: Podman reads per-registry
	// certificates from HOME/.config/containers/certs.d first.
	Home string
}

// Process is a running `podman system service`.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// StartService starts a service and, unless it was handed a listener,
// waits until it answers /_ping on its socket (or exits, or ctx ends, or
// startTimeout passes). On failure nothing is left running.
func StartService(ctx context.Context, cfg ServiceConfig) (*Process, error) {
	podman := cfg.Podman
	if podman == "" {
		var err error
		if podman, err = exec.LookPath("podman"); err != nil {
			return nil, errors.New("podman is not installed: install it (apt-get install podman runc) or pass a socket")
		}
	}
	idle := cfg.Idle
	if idle == "" {
		idle = "0"
	}
	args := []string{"--root", cfg.Root, "--runroot", cfg.RunRoot, "--tmpdir", cfg.TmpDir, "system", "service", "--time=" + idle}
	env := environ(cfg.Conf, cfg.Scratch)
	var cmd *exec.Cmd
	if cfg.Listener != nil {
		// LISTEN_PID must be the service's own pid: sh sets it to $$ and
		// execs podman, which keeps that pid.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=podman.sock exec "$0" "$@"`, podman}, args...)...)
		cmd.ExtraFiles = []*os.File{cfg.Listener} // fd 3
	} else {
		cmd = exec.Command(podman, append(args, "unix://"+cfg.Socket)...)
	}
	if cfg.Home != "" {
		env = append(slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }), "HOME="+cfg.Home)
	}
	cmd.Env = env
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	// Its own process group: a Ctrl-C on a terminal reaches the worker,
	// which then stops the service properly, rather than the service
	// under it. Pdeathsig: if the starter dies, the kernel stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: cfg.Pdeathsig}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting podman system service: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if cfg.Listener != nil {
		return p, nil
	}
	wctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := WaitPing(wctx, cfg.Socket, p.done); err != nil {
		state := "still running"
		select {
		case <-p.done:
			state = "exited: " + cmd.ProcessState.String()
		default:
		}
		p.Kill()
		return nil, fmt.Errorf("podman system service (pid %d, %s) did not answer /_ping on %s: %w", cmd.Process.Pid, state, cfg.Socket, err)
	}
	return p, nil
}

// startTimeout bounds how long StartService waits for /_ping. The first
// start on a fresh store initialises storage and can be slow on a loaded
// two-core machine.
const startTimeout = 60 * time.Second

// environ is the service's environment: the caller's, with CONTAINERS_CONF
// and TMPDIR set when given (and never inherited otherwise for
// CONTAINERS_CONF, which would point the service at another settings file).
func environ(conf, scratch string) []string {
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if conf != "" && strings.HasPrefix(kv, "CONTAINERS_CONF=") || scratch != "" && strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		env = append(env, kv)
	}
	if conf != "" {
		env = append(env, "CONTAINERS_CONF="+conf)
	}
	if scratch != "" {
		env = append(env, "TMPDIR="+scratch)
	}
	return env
}

// Pid is the service's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done closes when the service has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited says how the service ended; "" while it runs.
func (p *Process) Exited() string {
	select {
	case <-p.done:
		return p.cmd.ProcessState.String()
	default:
		return ""
	}
}

// Stop sends SIGTERM to the service (by its pid only: the conmon processes
// of containers are not its to end), waits up to grace, then SIGKILLs it.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill SIGKILLs the service and waits until it is reaped.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// WaitPing polls GET /_ping on a unix socket until it answers 200, ctx
// ends or done (the service exited) closes. A plain HTTP client keeps
// polling quiet and cheap.
func WaitPing(ctx context.Context, socket string, done <-chan struct{}) error {
	var lastErr error
	for {
		if lastErr = ping(ctx, socket); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), lastErr)
		case <-done:
			return fmt.Errorf("service exited (last attempt: %v)", lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping does one GET /_ping on a unix socket.
func ping(ctx context.Context, socket string) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://d/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// UnmountUnder detaches every mount point at or below dir, deepest first, as
// read from /proc/self/mountinfo. Podman normally unmounts its overlay and
// shm mounts on shutdown, but not after SIGKILL or a failed start, and
// os.RemoveAll on a mounted overlay would try to delete the image layers
// through it. MNT_DETACH succeeds even if something still holds the mount.
func UnmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// Field 5 (index 4) is the mount point, with octal escapes.
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// Deepest first; a path mounted several times is unmounted once per entry.
	sort.SliceStable(points, func(i, j int) bool {
		return strings.Count(points[i], "/") > strings.Count(points[j], "/")
	})
	var errs []error
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil &&
			!errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountinfo undoes the \ooo octal escapes the kernel uses for space,
// tab, newline and backslash in /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ProcessesMentioning returns the pids of the processes whose command line
// contains s, such as a service's folder.
func ProcessesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// AwaitProcesses waits, at most grace, until no process mentions dir.
func AwaitProcesses(dir string, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for len(ProcessesMentioning(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// EndProcesses gives the processes that mention dir a moment to finish
// (a `podman container cleanup` at work), then kills the rest: on Podman
// before 4.8 the conmon of every exec session waits 300 s (--exit-delay)
// after the command ends before it cleans up, and its container is gone.
func EndProcesses(dir string, grace time.Duration) {
	AwaitProcesses(dir, grace)
	for i := 0; i < 50; i++ {
		pids := ProcessesMentioning(dir)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
