package podmantest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/podman-worker/podman-worker/podman"
)

// requireRoot skips tests that need a real root Podman: the private service
// runs rootful storage (overlay mounts, runc) which needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the private Podman service runs rootful")
	}
}

// runContainer creates and starts a container from BusyboxImage running cmd,
// waits for it, returns its stdout and exit code, then removes it explicitly
// (not auto-remove, which races with wait).
func runContainer(t *testing.T, conn context.Context, cmd ...string) (string, int32) {
	t.Helper()
	spec := specgen.NewSpecGenerator(BusyboxImage, false)
	spec.Command = cmd
	created, err := containers.CreateWithSpec(conn, spec, nil)
	if err != nil {
		t.Fatalf("create %v: %v", cmd, err)
	}
	defer func() {
		if _, err := containers.Remove(conn, created.ID, new(containers.RemoveOptions).WithForce(true)); err != nil {
			t.Errorf("remove %s: %v", created.ID, err)
		}
	}()
	if err := containers.Start(conn, created.ID, nil); err != nil {
		t.Fatalf("start %v: %v", cmd, err)
	}
	code, err := containers.Wait(conn, created.ID, nil)
	if err != nil {
		t.Fatalf("wait %v: %v", cmd, err)
	}

	stdout, stderr := make(chan string, 64), make(chan string, 64)
	var out, errOut strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for stdout != nil || stderr != nil {
			select {
			case s, ok := <-stdout:
				if !ok {
					stdout = nil
					continue
				}
				out.WriteString(s)
			case s, ok := <-stderr:
				if !ok {
					stderr = nil
					continue
				}
				errOut.WriteString(s)
			}
		}
	}()
	logErr := containers.Logs(conn, created.ID, new(containers.LogOptions).WithStdout(true).WithStderr(true), stdout, stderr)
	close(stdout)
	close(stderr)
	wg.Wait()
	if logErr != nil {
		t.Fatalf("logs %v: %v", cmd, logErr)
	}
	if errOut.Len() > 0 {
		t.Logf("stderr of %v: %q", cmd, errOut.String())
	}
	return out.String(), code
}

func TestServiceLifecycle(t *testing.T) {
	requireRoot(t)
	t.Setenv(SocketEnv, "") // this test is about the harness-owned service
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	begin := time.Now()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := s.Stop(); err != nil {
				t.Errorf("cleanup Stop: %v", err)
			}
		}
	})
	startTook := time.Since(begin)
	if s.Socket != s.Dir+"/podman.sock" || s.URI != "unix://"+s.Socket {
		t.Errorf("Socket %q / URI %q do not follow Dir %q", s.Socket, s.URI, s.Dir)
	}
	if len(s.Socket) >= 108 {
		t.Errorf("socket path %q is %d bytes, unix sockets need < 108", s.Socket, len(s.Socket))
	}

	if err := EnsureBusybox(ctx, s.URI); err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v, Start+EnsureBusybox took %v", startTook, time.Since(begin))
	second := time.Now()
	if err := EnsureBusybox(ctx, s.URI); err != nil {
		t.Fatalf("second EnsureBusybox: %v", err)
	}
	t.Logf("second EnsureBusybox (no-op) took %v", time.Since(second))

	conn, err := bindings.NewConnection(ctx, s.URI)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := images.Exists(conn, BusyboxImage, nil); err != nil || !ok {
		t.Fatalf("images.Exists(%s) = %v, %v", BusyboxImage, ok, err)
	}
	checkImageAndTools(ctx, t, s, conn)

	// A running container survives Kill + Restart, and Stop removes it.
	spec := specgen.NewSpecGenerator(BusyboxImage, false)
	spec.Command = []string{"sleep", "1000"}
	sleeper, err := containers.CreateWithSpec(conn, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := containers.Start(conn, sleeper.ID, nil); err != nil {
		t.Fatal(err)
	}

	oldPid := s.pid()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if processAlive(oldPid) {
		t.Errorf("service pid %d still alive after Kill", oldPid)
	}
	if err := ping(ctx, s.Socket); err == nil {
		t.Error("ping answered after Kill")
	}
	begin = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart took %v", time.Since(begin))
	if err := ping(ctx, s.Socket); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
	conn, err = bindings.NewConnection(ctx, s.URI)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := images.Exists(conn, BusyboxImage, nil); err != nil || !ok {
		t.Errorf("image lost over Kill+Restart: %v, %v", ok, err)
	}
	if ok, err := containers.Exists(conn, sleeper.ID, nil); err != nil || !ok {
		t.Errorf("container lost over Kill+Restart: %v, %v", ok, err)
	}

	pid, dir := s.pid(), s.Dir
	begin = time.Now()
	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop (with one running container) took %v", time.Since(begin))
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s still there after Stop: %v", dir, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("service pid %d still exists after Stop (it was ours to reap): %v", pid, err)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mounts, []byte(dir)) {
		t.Errorf("mounts under %s remain after Stop", dir)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop should be a no-op: %v", err)
	}
	if err := s.Restart(ctx); err == nil {
		t.Error("Restart after Stop should fail")
	}
}

// checkImageAndTools: the busybox image was imported once, as the tests
// expect it (command, PATH), its user tools work in a container, and the
// podman CLI reaches the same store and service.
func checkImageAndTools(ctx context.Context, t *testing.T, s *Service, conn context.Context) {
	t.Helper()
	list, err := images.List(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("second EnsureBusybox should not import again: %d images", len(list))
	}
	img, err := images.GetImage(conn, BusyboxImage, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(img.Config.Cmd, " "); got != "/bin/sh" {
		t.Errorf("image Cmd = %q, want /bin/sh", got)
	}
	if !containsString(img.Config.Env, "PATH=/bin:/sbin:/usr/bin:/usr/sbin") {
		t.Errorf("image Env = %q, want the PATH", img.Config.Env)
	}

	out, code := runContainer(t, conn, "echo", "hello")
	if code != 0 || strings.TrimSpace(out) != "hello" {
		t.Fatalf("echo hello: exit %d, stdout %q", code, out)
	}
	// The /etc files make user tools work. Debian 12's busybox-static has no
	// adduser/addgroup applets, so a user is added by appending to
	// /etc/passwd, which is what adduser would do.
	out, code = runContainer(t, conn, "sh", "-c",
		"whoami; echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && id bob; stat -c %A /tmp; echo $PATH")
	want := "root\nuid=1000(bob) gid=1000 groups=1000\ndrwxrwxrwt\n/bin:/sbin:/usr/bin:/usr/sbin\n"
	if code != 0 || out != want {
		t.Errorf("user tools: exit %d, stdout %q, want %q", code, out, want)
	}

	// The CLI reaches the same private store with Env and PodmanArgs, and
	// the same service with --url.
	cli := exec.CommandContext(ctx, "podman", append(s.PodmanArgs(), "images", "--format", "{{.Repository}}:{{.Tag}}")...)
	cli.Env = s.Env()
	if b, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(b), BusyboxImage) {
		t.Errorf("podman %v images: %v: %s", s.PodmanArgs(), err, b)
	}
	cli = exec.CommandContext(ctx, "podman", "--url", s.URI, "images", "--format", "{{.Repository}}:{{.Tag}}")
	cli.Env = s.Env()
	if b, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(b), BusyboxImage) {
		t.Errorf("podman --url images: %v: %s", err, b)
	}
}

func TestStartWithoutPodman(t *testing.T) {
	t.Setenv(SocketEnv, "")
	t.Setenv("PATH", "/nonexistent")
	s, err := Start(context.Background())
	if err == nil {
		_ = s.Stop()
		t.Fatal("Start succeeded without podman on PATH")
	}
	if !strings.Contains(err.Error(), "apt-get install") || !strings.Contains(err.Error(), "make test") {
		t.Errorf("error should say how to install podman: %v", err)
	}
}

func TestExternalServiceRefusesKillRestart(t *testing.T) {
	requireRoot(t)
	if os.Getenv(SocketEnv) != "" {
		t.Skip("would reuse the real external service")
	}
	// A harness-owned service stands in for "an already-running service".
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	owner, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := owner.Stop(); err != nil {
			t.Error(err)
		}
	}()

	t.Setenv(SocketEnv, owner.Socket)
	ext, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ext.URI != owner.URI || ext.PodmanArgs() != nil {
		t.Errorf("external service: URI %q, PodmanArgs %v", ext.URI, ext.PodmanArgs())
	}
	if err := ext.Kill(); err == nil || !strings.Contains(err.Error(), "harness-owned") {
		t.Errorf("Kill on external service: %v", err)
	}
	if err := ext.Restart(ctx); err == nil || !strings.Contains(err.Error(), "harness-owned") {
		t.Errorf("Restart on external service: %v", err)
	}
	if err := ext.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, owner.Socket); err != nil {
		t.Errorf("external Stop must leave the service running: %v", err)
	}
	if _, err := os.Stat(owner.Dir); err != nil {
		t.Errorf("external Stop must leave the folder: %v", err)
	}

	t.Setenv(SocketEnv, "/nonexistent/podman.sock")
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := Start(short); err == nil {
		t.Error("Start with a dead external socket should fail")
	}
}

func TestBusyboxRootfs(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("no %s: %v", busyboxPath, err)
	}
	b, err := busyboxRootfs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	for _, name := range []string{"bin/busybox", "bin/sh", "bin/echo", "bin/sleep", "bin/id", "bin/passwd", "etc/passwd", "etc/group", "etc/shadow", "tmp/"} {
		if entries[name] == nil {
			t.Errorf("missing %s", name)
		}
	}
	if h := entries["bin/busybox"]; h != nil && h.Mode != 0o755 {
		t.Errorf("bin/busybox mode %o", h.Mode)
	}
	if h := entries["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("tmp mode %o", h.Mode)
	}
	if h := entries["bin/sh"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox") {
		t.Errorf("bin/sh: %+v", h)
	}
	if entries["bin/busybox"] != nil && entries["bin/busybox"].Typeflag != tar.TypeReg {
		t.Error("bin/busybox must be a regular file, not a link to itself")
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/testdata/containers.conf"); err != nil {
		t.Errorf("RepoRoot %s has no testdata/containers.conf: %v", root, err)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pid returns the PID of the running service process, or 0.
func (s *Service) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid()
}

// helperEnv switches the test binary into TestPdeathsigHelper's child mode.
const helperEnv = "PODMANTEST_PDEATHSIG_HELPER"

// TestPdeathsigHelper is not a test on its own: run by TestPdeathsig in a
// child test binary, it starts a service, reports it and waits to be killed.
func TestPdeathsigHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper for TestPdeathsig")
	}
	s, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("SERVICE %d %s\n", s.pid(), s.Dir)
	time.Sleep(time.Minute)
}

// TestPdeathsig checks that a test binary that dies without Stop (SIGKILL,
// crash, timeout) does not leave its service running.
func TestPdeathsig(t *testing.T) {
	requireRoot(t)
	if os.Getenv(helperEnv) != "" {
		t.Skip("inside the helper")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPdeathsigHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1", SocketEnv+"=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "SERVICE %d %s", &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not report a service; stderr: %s", stderr.String())
	}
	t.Cleanup(func() {
		// The dead binary could not clean up: do it for it.
		if err := podman.UnmountUnder(dir); err != nil {
			t.Error(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("service pid %d survived the death of its test binary", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processAlive reports whether pid exists and is not a zombie (an orphaned
// zombie waits for PID 1 to reap it, which kill(pid, 0) cannot tell).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that ends the command name.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// ping asks /_ping once, briefly.
func ping(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return podman.WaitPing(ctx, socket, closed)
}

// closed makes WaitPing give up after its first attempt.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
