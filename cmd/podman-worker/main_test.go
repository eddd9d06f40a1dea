package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/internal/testbuf"
	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// These tests run the built binary as a real child process, the way the
// Dart backend does, against a private Podman service that TestMain starts
// (its own storage, socket and containers.conf in a temp folder).

// buildTags are the tags the bindings need to build without cgo libraries.
const buildTags = "remote exclude_graphdriver_btrfs btrfs_noversion containers_image_openpgp exclude_graphdriver_devicemapper"

var (
	workerBin string              // the built worker (with -race when the tests run with it)
	plainBin  string              // the worker without -race, for measuring its memory
	service   *podmantest.Service // the private service
	repoRoot  string
)

func TestMain(m *testing.M) {
	if socket := os.Getenv(relayEnv); socket != "" {
		os.Exit(relayLines(socket)) // a child of BenchmarkPing
	}
	if os.Getenv(stdoutHelperEnv) == "1" {
		// A child of TestStdoutCarriesOnlyTheProtocol: it needs neither
		// the worker binary nor Podman, and it ends with os.Exit, which
		// would skip their clean-up.
		os.Exit(m.Run())
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) (code int) {
	var err error
	if repoRoot, err = podmantest.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "podman-worker-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	workerBin = filepath.Join(tmp, "podman-worker")
	// The tests' base image is made by hand (podmantest), so no worker
	// owns it: every worker they start shares it, as an operator would.
	if os.Getenv("SHARED_IMAGES") == "" {
		os.Setenv("SHARED_IMAGES", podmantest.BusyboxImage)
	}
	args := []string{"build", "-tags", buildTags, "-o", workerBin}
	if raceEnabled {
		args = append(args, "-race") // the child is checked for races too
		// A race-enabled binary sleeps 1 s on exit by default, and the
		// tests end several dozen workers.
		if os.Getenv("GORACE") == "" {
			os.Setenv("GORACE", "atexit_sleep_ms=0")
		}
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the worker: %v\n", err)
		return 1
	}
	// The warm instances' runner, beside the worker, where it looks first.
	runner := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(tmp, "podman-worker-runner"), "../podman-worker-runner")
	runner.Env = append(os.Environ(), "CGO_ENABLED=0")
	runner.Stdout, runner.Stderr = os.Stderr, os.Stderr
	if err := runner.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the runner: %v\n", err)
		return 1
	}
	plainBin = workerBin
	if raceEnabled {
		// The race detector multiplies memory use: memory bounds are
		// checked on a plain build.
		plainBin = workerBin + "-plain"
		build := exec.Command("go", "build", "-tags", buildTags, "-o", plainBin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building the worker without -race: %v\n", err)
			return 1
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	service, err = podmantest.Start(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the private podman service: %v\n", err)
		return 1
	}
	defer func() {
		if err := service.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}()
	if err := podmantest.EnsureBusybox(ctx, service.URI); err != nil {
		fmt.Fprintf(os.Stderr, "making the busybox image: %v\n", err)
		return 1
	}
	return m.Run()
}

// worker is a running worker process with its stdout read line by line.
type worker struct {
	t      testing.TB
	ready  string // the worker.ready line
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *testbuf.Buffer
	done   chan error
}

// startWorker starts the worker and reads its first line, which must be
// the worker.ready notification (kept in w.ready).
func startWorker(t testing.TB, args ...string) *worker {
	t.Helper()
	w := startWorkerRaw(t, args...)
	line, ok := w.next(time.Minute)
	if !ok || !strings.Contains(line, `"method":"worker.ready"`) {
		t.Fatalf("the first line is not worker.ready: %q", line)
	}
	w.ready = line
	return w
}

// startWorkerRaw starts the worker and leaves all of its output to the test.
func startWorkerRaw(t testing.TB, args ...string) *worker {
	t.Helper()
	return startBinary(t, workerBin, args...)
}

func startBinary(t testing.TB, bin string, args ...string) *worker {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1<<16), stderr: &testbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		w.done <- cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// End it as a backend would, so that it removes its containers on
		// the way out and leaves none to the tests after this one: end of
		// input, then SIGTERM if calls are still running, then SIGKILL.
		go func() {
			for range w.lines { // nobody reads them any more
			}
		}()
		stdin.Close()
		for _, step := range []struct {
			wait time.Duration
			sig  os.Signal
		}{{5 * time.Second, syscall.SIGTERM}, {20 * time.Second, os.Kill}, {time.Minute, nil}} {
			select {
			case <-exited:
			case <-time.After(step.wait):
				if step.sig != nil {
					_ = cmd.Process.Signal(step.sig)
				}
				continue
			}
			break
		}
		if t.Failed() {
			t.Logf("worker stderr:\n%s", w.stderr.String())
		}
	})
	return w
}

func (w *worker) send(line string) {
	w.t.Helper()
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		w.t.Fatalf("writing to the worker: %v", err)
	}
}

// next returns the next stdout line, failing the test after timeout.
func (w *worker) next(timeout time.Duration) (string, bool) {
	w.t.Helper()
	select {
	case l, ok := <-w.lines:
		return l, ok
	case <-time.After(timeout):
		w.t.Fatalf("no output from the worker in %v", timeout)
		return "", false
	}
}

// call sends a request and returns the response with the same id,
// collecting the lines that came before it (notifications).
func (w *worker) call(id, method, params string) (resp map[string]any, before []string) {
	w.t.Helper()
	if !json.Valid([]byte(id)) {
		w.t.Fatalf("call: id %s is not JSON (quote string ids)", id)
	}
	req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q`, id, method)
	if params != "" {
		req += `,"params":` + params
	}
	w.send(req + "}")
	for {
		line, ok := w.next(2 * time.Minute)
		if !ok {
			w.t.Fatalf("the worker closed its output before answering %s", id)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			w.t.Fatalf("stdout line is not JSON: %q", line)
		}
		if raw, _ := json.Marshal(m["id"]); string(raw) == id && m["method"] == nil {
			return m, before
		}
		before = append(before, line)
	}
}

// closeAndWait ends the input and returns the exit code.
func (w *worker) closeAndWait(timeout time.Duration) int {
	w.t.Helper()
	w.stdin.Close()
	for range w.lines {
	}
	select {
	case err := <-w.done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			w.t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		w.t.Fatalf("the worker did not exit %v after its input ended", timeout)
		return -1
	}
}

// testdataBuild is the folder of the tests' build contexts, which the
// tests allow with --build-roots (builds are refused without it).
func testdataBuild() string {
	return filepath.Join(repoRoot, "testdata", "build")
}

// privateService starts a fresh private Podman service with the busybox
// image, stopped when the test ends: for tests that change the service's
// state (kill it, list what it holds).
func privateService(t testing.TB) *podmantest.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, err := podmantest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Error(err) // a folder or mount left in /tmp
		}
	})
	if err := podmantest.EnsureBusybox(ctx, svc.URI); err != nil {
		t.Fatal(err)
	}
	return svc
}

// exitsLeavingNothing ends w's input, expects exit 0, and checks on the
// service itself (a new worker would remove what a dead one left) that no
// container named name is left.
func exitsLeavingNothing(t *testing.T, w *worker, socket, name string) {
	t.Helper()
	if code := w.closeAndWait(30 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	for _, c := range onService(t, socket) {
		if slices.Contains(c.Names, name) {
			t.Errorf("container %s left behind: %v", name, names(onService(t, socket)))
		}
	}
}

// lineConn is a worker's stdio seen line by line (*worker, *leanWorker).
type lineConn interface {
	send(line string)
	next(timeout time.Duration) (string, bool)
}

// pipeline sends n requests, keeping inFlight of them outstanding, and
// calls reply for each line that comes back until n lines have.
func pipeline(tb testing.TB, w lineConn, n, inFlight int, request func(i int) string, reply func(line string)) {
	tb.Helper()
	sent := 0
	for ; sent < inFlight && sent < n; sent++ {
		w.send(request(sent))
	}
	for got := 0; got < n; got++ {
		line, ok := w.next(2 * time.Minute)
		if !ok {
			tb.Fatalf("output closed after %d of %d replies", got, n)
		}
		reply(line)
		if sent < n {
			w.send(request(sent))
			sent++
		}
	}
}
