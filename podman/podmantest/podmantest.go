// Package podmantest is the harness every test in the project uses to talk to
// a REAL Podman service that is PRIVATE to the test.
//
// Why a private service: tests create, kill and remove containers and images
// freely, so they must never touch the machine's own Podman store, and they
// must never edit /etc/containers. Each Service therefore runs its own
// `podman system service` with its own --root, --runroot and --tmpdir inside a
// fresh temporary folder, configured only through the CONTAINERS_CONF
// environment variable pointing at the project's testdata/containers.conf
// (runc instead of crun, ulimits the machine can grant, file locks instead of
// the shared /dev/shm/libpod_lock segment). See /work/shared/podman-test-env.md.
//
// Why no registry: the test machines cannot reach one, so EnsureBusybox builds
// a base image from the host's static busybox and imports it through the
// service.
//
// Everything importing this package needs the bindings' build tags:
//
//	-tags "remote exclude_graphdriver_btrfs btrfs_noversion containers_image_openpgp exclude_graphdriver_devicemapper"
package podmantest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/podman-worker/podman-worker/podman"
)

// BusyboxImage is the reference of the base image EnsureBusybox creates. It
// lives under "localhost/" so that no lookup ever goes to a registry.
const BusyboxImage = "localhost/busybox:latest"

// SocketEnv names the environment variable that, when set to the path of the
// unix socket of an already-running Podman service, makes Start reuse that
// service instead of starting a private one. It exists for compatibility runs
// against another Podman version (for example Podman 5 on Debian 13).
const SocketEnv = "PODMAN_WORKER_TEST_SOCKET"

// busyboxPath is the host's static busybox (package busybox-static), the only
// source of a userland for test images on machines without a registry.
const busyboxPath = "/bin/busybox"

const (
	// startTimeout bounds how long Start and Restart wait for /_ping. The
	// first start on a fresh store initialises storage and can be slow on a
	// loaded two-core machine.
	startTimeout = 60 * time.Second
	// termGrace is how long Stop waits after SIGTERM before SIGKILL.
	termGrace = 10 * time.Second
	// cleanupTimeout bounds the container removal Stop does through the API.
	cleanupTimeout = 60 * time.Second
)

// Service is a private `podman system service` with its own storage root,
// runroot, tmpdir and socket in a temp folder, so a test can do anything to it
// without touching the machine's Podman store or any other test's service.
//
// When PODMAN_WORKER_TEST_SOCKET is set the Service instead points at that
// externally-run service (see Start); such a Service is not owned by the
// harness: Stop only removes containers, Kill and Restart refuse.
//
// The methods are safe for concurrent use.
type Service struct {
	// Dir is the temp folder holding everything of the service. It is short
	// (created with os.MkdirTemp("/tmp", "pw-")) because unix socket paths
	// must stay under 108 bytes and Podman also puts sockets (conmon attach
	// sockets) below its runroot. For an external service it is the folder
	// of that service's socket and is never removed by the harness.
	Dir string
	// Socket is the path of the API socket: Dir + "/podman.sock".
	Socket string
	// URI is what the bindings and `podman --url` want: "unix://" + Socket.
	URI string

	external bool   // true when reusing PODMAN_WORKER_TEST_SOCKET
	podman   string // absolute path of the podman binary
	confPath string // the project's testdata/containers.conf
	logPath  string // Dir/service.log: stdout+stderr of the service
	home     string // the service's own HOME (StartWithHome), or ""

	mu      sync.Mutex
	proc    *podman.Process // the running service, nil when not running
	stopped bool            // Stop has completed: Dir is gone
}

// Start starts a private Podman service in a new temp folder and waits until
// its GET /_ping answers (up to 60 s, or until ctx ends). ctx only bounds the
// wait: the service outlives it and runs until Stop or Kill. On failure the
// error quotes the end of the service's log, since that is where Podman says
// why it did not come up, and nothing is left behind.
//
// If PODMAN_WORKER_TEST_SOCKET is set, nothing is started: the returned
// Service points at that socket (after checking that it answers /_ping).
func Start(ctx context.Context) (*Service, error) { return start(ctx, false) }

// StartWithHome is Start with a HOME of the service's own (Dir/home), so
// a test can give it per-registry certificates (Registry.TrustCA) without
// touching /etc/containers.
func StartWithHome(ctx context.Context) (*Service, error) { return start(ctx, true) }

func start(ctx context.Context, home bool) (*Service, error) {
	if sock := os.Getenv(SocketEnv); sock != "" {
		return startExternal(ctx, sock)
	}

	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("podmantest: podman not found on PATH (%w): run `make test` "+
			"(it installs podman runc busybox-static) or `apt-get install -y podman runc busybox-static`", err)
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	conf := filepath.Join(root, "testdata", "containers.conf")
	if _, err := os.Stat(conf); err != nil {
		return nil, fmt.Errorf("podmantest: the test containers.conf is missing: %w", err)
	}

	dir, err := os.MkdirTemp("/tmp", "pw-")
	if err != nil {
		return nil, fmt.Errorf("podmantest: %w", err)
	}
	for _, sub := range []string{"root", "runroot", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("podmantest: %w", err)
		}
	}
	s := &Service{
		Dir:      dir,
		Socket:   filepath.Join(dir, "podman.sock"),
		podman:   podman,
		confPath: conf,
		logPath:  filepath.Join(dir, "service.log"),
	}
	s.URI = "unix://" + s.Socket
	if home {
		s.home = filepath.Join(dir, "home")
		if err := os.Mkdir(s.home, 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("podmantest: %w", err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(ctx); err != nil {
		// Leave nothing behind: no process, no mounts, no folder.
		s.killLocked()
		_ = RemoveDir(dir)
		return nil, err
	}
	return s, nil
}

// startExternal builds the Service for an already-running service named by
// PODMAN_WORKER_TEST_SOCKET.
func startExternal(ctx context.Context, sock string) (*Service, error) {
	sock = strings.TrimPrefix(sock, "unix://")
	if !filepath.IsAbs(sock) {
		return nil, fmt.Errorf("podmantest: %s must be an absolute socket path, got %q", SocketEnv, sock)
	}
	s := &Service{
		Dir:      filepath.Dir(sock),
		Socket:   sock,
		URI:      "unix://" + sock,
		external: true,
	}
	if root, err := RepoRoot(); err == nil {
		s.confPath = filepath.Join(root, "testdata", "containers.conf")
	}
	wctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := podman.WaitPing(wctx, s.Socket, nil); err != nil {
		return nil, fmt.Errorf("podmantest: external service %s=%s does not answer /_ping: %w", SocketEnv, sock, err)
	}
	return s, nil
}

// startLocked launches the service process on s.Dir and waits for /_ping.
// s.mu must be held.
func (s *Service) startLocked(ctx context.Context) error {
	// A socket left by a SIGKILLed service would only make the ping below
	// see "connection refused"; remove it so the new service binds cleanly.
	_ = os.Remove(s.Socket)

	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	fmt.Fprintf(logf, "=== podmantest: starting service at %s ===\n", time.Now().Format(time.RFC3339Nano))

	// Buildah puts its build bundles in $TMPDIR (else /var/tmp) and leaves
	// one behind when a build is cancelled: keep them in the service's
	// folder, which Stop removes.
	scratch := filepath.Join(s.Dir, "scratch")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return fmt.Errorf("podmantest: %w", err)
	}
	// The service outlives ctx: ctx only bounds the wait for it.
	proc, err := podman.StartService(ctx, podman.ServiceConfig{
		Podman: s.podman, Root: filepath.Join(s.Dir, "root"), RunRoot: filepath.Join(s.Dir, "runroot"),
		TmpDir: filepath.Join(s.Dir, "tmp"), Dir: s.Dir, Scratch: scratch, Conf: s.confPath,
		Socket: s.Socket, Log: logf, Home: s.home,
		// If the test binary dies (panic, SIGKILL, timeout) the kernel kills
		// the service, so no orphan keeps running on the private store.
		// Caveat: the signal follows the OS thread that forked; the Go
		// runtime only ends threads whose goroutine exits while locked with
		// runtime.LockOSThread, which callers of Start do not do.
		Pdeathsig: syscall.SIGKILL,
	})
	if err != nil {
		return fmt.Errorf("podmantest: %w; %s says:\n%s", err, s.logPath, tail(s.logPath, 4096))
	}
	s.proc = proc
	return nil
}

// Stop removes every container through the API (forced, so no lock or conmon
// outlives the test), SIGTERMs the service by its own PID and waits for it
// (SIGKILL after 10 s), unmounts anything still mounted under Dir (deepest
// first, MNT_DETACH, so RemoveAll does not fail on or descend into overlay
// mounts) and removes Dir. If the service had been Killed it is restarted
// first so its containers can be removed. Calling Stop again is a no-op.
//
// For an external service (PODMAN_WORKER_TEST_SOCKET) Stop only removes the
// containers: the service and its folder belong to whoever started them.
func (s *Service) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	var errs []error

	if !s.external && !s.runningLocked() {
		// Killed earlier: bring it back so containers (and their conmon and
		// runc processes) are cleaned up through Podman rather than leaked.
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		if err := s.startLocked(ctx); err != nil {
			errs = append(errs, fmt.Errorf("restarting to clean up: %w", err))
		}
		cancel()
	}
	if s.external || s.runningLocked() {
		if err := removeAllContainers(s.URI); err != nil {
			errs = append(errs, err)
		}
	}
	if s.external {
		// A shared service outlives each test: leave only the base image,
		// so the next test lists what it made itself.
		if err := removeImagesBut(s.URI, BusyboxImage); err != nil {
			errs = append(errs, err)
		}
	}
	if s.external {
		s.stopped = true
		return errors.Join(errs...)
	}

	if err := s.terminateLocked(); err != nil {
		errs = append(errs, err)
	}
	// conmon, and the `podman container cleanup` it starts, can outlive
	// the containers. One that runs after Dir is gone creates the store
	// again, overlay mount included, and leaves it in /tmp.
	podman.EndProcesses(s.Dir, 2*time.Second)
	if err := podman.UnmountUnder(s.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, err)
	}
	s.stopped = true
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("podmantest: stop: %w", err)
	}
	return nil
}

// Kill sends SIGKILL to the service process only and reaps it. Storage,
// containers (and their conmon processes) and Dir stay, which is what
// recovery tests need: they then call Restart to see how the project copes
// with a service that vanished.
func (s *Service) Kill() error {
	if s.external {
		return errors.New("podmantest: Kill needs a harness-owned service, not the external " + SocketEnv)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("podmantest: Kill after Stop")
	}
	if !s.runningLocked() {
		return errors.New("podmantest: Kill: service is not running")
	}
	s.killLocked()
	return nil
}

// Restart starts the service again on the same Dir, storage and socket (after
// Kill, or to restart a running one: it is stopped with SIGTERM first) and
// waits for /_ping, so a test can check what survives a service restart.
func (s *Service) Restart(ctx context.Context) error {
	if s.external {
		return errors.New("podmantest: Restart needs a harness-owned service, not the external " + SocketEnv)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("podmantest: Restart after Stop: Dir has been removed")
	}
	if err := s.terminateLocked(); err != nil {
		return fmt.Errorf("podmantest: restart: %w", err)
	}
	return s.startLocked(ctx)
}

// Env returns the environment (os.Environ() plus CONTAINERS_CONF pointing at
// the project's testdata/containers.conf) for running the podman CLI against
// the same private store, e.g. exec.Cmd.Env = s.Env() with PodmanArgs(). The
// service itself runs with exactly this environment; without the conf the CLI
// would pick crun and rlimits that fail on these machines.
func (s *Service) Env() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONTAINERS_CONF=") {
			env = append(env, kv)
		}
	}
	if s.confPath != "" {
		env = append(env, "CONTAINERS_CONF="+s.confPath)
	}
	return env
}

// PodmanArgs returns the global flags selecting the private store
// (--root, --runroot, --tmpdir under Dir), for tests and benchmarks that run
// the podman CLI in local mode directly on that store (with cmd.Env = Env()).
// Do not combine them with --url: in remote mode podman 4.3.1 rejects them
// ("Error: unknown flag: --root"); a remote CLI needs only `--url s.URI`.
// For an external service the store is unknown and it returns nil.
func (s *Service) PodmanArgs() []string {
	if s.external {
		return nil
	}
	return []string{
		"--root", filepath.Join(s.Dir, "root"),
		"--runroot", filepath.Join(s.Dir, "runroot"),
		"--tmpdir", filepath.Join(s.Dir, "tmp"),
	}
}

// runningLocked reports whether the service process is alive (not reaped).
func (s *Service) runningLocked() bool {
	return s.proc != nil && s.proc.Exited() == ""
}

// killLocked SIGKILLs the service process (by its PID only, not its process
// group: the conmon processes of containers must survive a Kill just as they
// survive a crash of a real service) and waits until it is reaped.
func (s *Service) killLocked() {
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

// terminateLocked SIGTERMs the service by its PID, waits up to termGrace and
// then SIGKILLs it. It is a no-op when the service is not running.
func (s *Service) terminateLocked() error {
	if s.proc == nil {
		return nil
	}
	s.proc.Stop(termGrace)
	s.proc = nil
	return nil
}

// removeAllContainers force-removes every container of the service at uri.
// Timeout 0 kills instead of waiting 10 s per container for a shell that, as
// PID 1, ignores SIGTERM.
func removeAllContainers(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	conn, err := bindings.NewConnection(ctx, uri)
	if err != nil {
		return fmt.Errorf("connecting to remove containers: %w", err)
	}
	list, err := containers.List(conn, new(containers.ListOptions).WithAll(true))
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	var errs []error
	for _, c := range list {
		opts := new(containers.RemoveOptions).
			WithForce(true).WithIgnore(true).WithDepend(true).WithVolumes(true).WithTimeout(0)
		reports, err := containers.Remove(conn, c.ID, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID, err))
			continue
		}
		for _, r := range reports {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("removing container %s: %w", r.Id, r.Err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeImagesBut removes every image except keep.
func removeImagesBut(uri, keep string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	conn, err := bindings.NewConnection(ctx, uri)
	if err != nil {
		return fmt.Errorf("connecting to remove images: %w", err)
	}
	list, err := images.List(conn, new(images.ListOptions).WithAll(true))
	if err != nil {
		return fmt.Errorf("listing images: %w", err)
	}
	var errs []error
	for _, img := range list {
		if slices.Contains(img.RepoTags, keep) {
			continue
		}
		if _, rerrs := images.Remove(conn, []string{img.ID}, new(images.RemoveOptions).WithForce(true).WithIgnore(true)); len(rerrs) > 0 {
			errs = append(errs, fmt.Errorf("removing image %s: %w", img.ID, errors.Join(rerrs...)))
		}
	}
	return errors.Join(errs...)
}

// tail returns the last max bytes of the file at path, for error messages.
func tail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}

// ProcessesMentioning returns the pids of the processes whose command line
// contains s, such as a service's folder.
func ProcessesMentioning(s string) []int { return podman.ProcessesMentioning(s) }

// RemoveDir removes dir after detaching every mount below it: a Podman
// store keeps its overlay folder mounted on itself after the service
// stops, and os.RemoveAll alone then fails with "device or resource busy".
func RemoveDir(dir string) error {
	if err := podman.UnmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// busyboxMu serialises EnsureBusybox within the test binary.
var busyboxMu sync.Mutex

// EnsureBusybox makes sure the service at uri has the image
// "localhost/busybox:latest", building it without any registry: an in-memory
// tarball of the host's static /bin/busybox plus one symlink per applet and a
// minimal /etc (passwd, group, shadow so that user tools such as passwd, su
// and id work inside; note that Debian 12's busybox-static has no
// adduser/addgroup applets, so tests add users by appending to /etc/passwd),
// imported through the API with CMD ["/bin/sh"] and a PATH. It is idempotent:
// if the image exists it does nothing.
func EnsureBusybox(ctx context.Context, uri string) error {
	// Parallel tests sharing a service would otherwise import twice and
	// leave a dangling <none> image behind the second tag.
	busyboxMu.Lock()
	defer busyboxMu.Unlock()
	conn, err := bindings.NewConnection(ctx, uri)
	if err != nil {
		return fmt.Errorf("podmantest: connecting to %s: %w", uri, err)
	}
	exists, err := images.Exists(conn, BusyboxImage, nil)
	if err != nil {
		return fmt.Errorf("podmantest: checking for %s: %w", BusyboxImage, err)
	}
	if exists {
		return nil
	}
	rootfs, err := busyboxRootfs(ctx)
	if err != nil {
		return fmt.Errorf("podmantest: building the busybox rootfs: %w", err)
	}
	opts := new(images.ImportOptions).
		WithReference(BusyboxImage).
		WithMessage("podmantest: static busybox from " + busyboxPath).
		WithChanges([]string{
			`CMD ["/bin/sh"]`,
			`ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin`,
		})
	if _, err := images.Import(conn, bytes.NewReader(rootfs), opts); err != nil {
		return fmt.Errorf("podmantest: importing %s: %w", BusyboxImage, err)
	}
	exists, err = images.Exists(conn, BusyboxImage, nil)
	if err != nil {
		return fmt.Errorf("podmantest: checking for %s after import: %w", BusyboxImage, err)
	}
	if !exists {
		return fmt.Errorf("podmantest: import reported success but %s does not exist", BusyboxImage)
	}
	return nil
}

// busyboxRootfs returns an uncompressed tar of the busybox root filesystem.
func busyboxRootfs(ctx context.Context) ([]byte, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("%w (install busybox-static: `apt-get install -y busybox-static`)", err)
	}
	out, err := exec.CommandContext(ctx, busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	var applets []string
	seen := map[string]bool{}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || strings.Contains(a, "/") || seen[a] {
			continue
		}
		seen[a] = true
		applets = append(applets, a)
	}
	sort.Strings(applets)
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list printed no applets", busyboxPath)
	}

	// A fixed time keeps the layer identical from run to run.
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"etc", 0o755}, {"root", 0o700}, {"home", 0o755}, {"tmp", 0o1777}} {
		if err := dir(d.name, d.mode); err != nil {
			return nil, err
		}
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		mode int64
		data string
	}{
		{"etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n"},
		{"etc/shadow", 0o640, "root:*:19000:0:99999:7:::\n"},
	} {
		if err := file(f.name, f.mode, []byte(f.data)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RepoRoot walks up from the working directory to the folder holding go.mod.
// `go test` runs each package in its own folder, so this is how tests find
// repository files such as testdata/containers.conf.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !st.IsDir() {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or any parent folder", wd)
		}
	}
}
