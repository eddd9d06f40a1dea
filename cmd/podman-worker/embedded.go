package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/podman-worker/podman-worker/podman"
	"github.com/rs/zerolog"
)

// defaultSockets are where a running Podman service usually listens:
// rootful, then the user's rootless one.
func defaultSockets(getenv func(string) string) []string {
	out := []string{DefaultSocket}
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" {
		out = append(out, filepath.Join(dir, "podman", "podman.sock"))
	}
	return out
}

// answers reports whether something accepts connections at a unix socket.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// embeddedService is a `podman system service` the worker started itself
// because no socket was configured and none answered: the default that
// lets `make run` work on a machine with podman installed and nothing else.
type embeddedService struct {
	root    string
	socket  string
	scratch string // the service's TMPDIR, removed when it stops
	proc    *podman.Process
	log     zerolog.Logger
}

// startEmbedded starts podman's service with its storage under root and,
// when conf is set, that containers.conf (on some machines the defaults
// cannot run containers: crun on cgroup v1, rlimits above the host's). pid
// names the worker's own files under root, so two workers can share it.
func startEmbedded(ctx context.Context, root, conf string, pid int, log zerolog.Logger) (*embeddedService, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, errors.New("no Podman socket is configured or answering, and podman is not installed to start one: install it (apt-get install podman) or pass --socket")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("--podman-root: %w", err)
	}
	if conf != "" {
		abs, err := filepath.Abs(conf)
		if err != nil {
			return nil, fmt.Errorf("--podman-conf: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--podman-conf: %w", err)
		}
		conf = abs
	} else {
		// Podman's own defaults cannot run a container on every host
		// (crun refuses cgroup v1, rlimits above the host's hard limits
		// fail without CAP_SYS_RESOURCE): the worker's own service gets
		// settings that fit this one.
		conf = filepath.Join(root, "containers.conf")
		if err := os.WriteFile(conf, []byte(embeddedConf()), 0o600); err != nil {
			return nil, fmt.Errorf("--podman-root: %w", err)
		}
	}
	// A scratch folder per worker, removed when the service stops (see
	// podman.ServiceConfig.Scratch); the folders of workers that died
	// without stopping theirs are removed here.
	removeStaleScratch(root)
	scratch := filepath.Join(root, fmt.Sprintf("scratch-%d", pid))
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("--podman-root: %w", err)
	}
	logPath := filepath.Join(root, "service.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the service has its own copy
	socket := filepath.Join(root, fmt.Sprintf("podman-%d.sock", pid))
	proc, err := podman.StartService(ctx, podman.ServiceConfig{
		Root: filepath.Join(root, "storage"), RunRoot: filepath.Join(root, "run"), TmpDir: filepath.Join(root, "tmp"),
		Dir: root, Scratch: scratch, Conf: conf, Socket: socket, Log: logFile,
		// If the worker dies without stopping it, the kernel stops it.
		Pdeathsig: syscall.SIGTERM,
	})
	if err != nil {
		_ = os.RemoveAll(scratch)
		return nil, fmt.Errorf("%w; see %s", err, logPath)
	}
	log.Info().Str("socket", socket).Str("root", root).Int("pid", proc.Pid()).Msg("started an embedded podman service")
	return &embeddedService{root: root, socket: socket, scratch: scratch, proc: proc, log: log}, nil
}

// embeddedConf is the containers.conf of the worker's own service: runc
// where it is installed (crun, Debian's default, refuses cgroup v1 hosts:
// "cgroups in hybrid mode not supported"), default rlimits no higher than
// the worker's own hard limits (and nproc at most 4096), which the service and its containers
// inherit (Podman asks 1048576 as root, which a container without
// CAP_SYS_RESOURCE cannot set above them: "setrlimit RLIMIT_NOFILE:
// Operation not permitted"), and locks in files of its own storage rather
// than the lock segment every Podman on the host shares.
func embeddedConf() string {
	limit := func(resource int, want uint64) uint64 {
		var r syscall.Rlimit
		if err := syscall.Getrlimit(resource, &r); err == nil && r.Max < want {
			return r.Max
		}
		return want
	}
	const rlimitNproc = 6 // RLIMIT_NPROC on Linux
	// nproc: Podman's service caps its own at 32768, and a container asking
	// more fails the same way ("OCI permission denied", seen here with
	// 65536 and 96367 on a host whose hard limit is 96367); a function's
	// processes are bounded by its pids limit (--max-pids) anyway.
	nofile, nproc := limit(syscall.RLIMIT_NOFILE, 1048576), limit(rlimitNproc, 4096)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by podman-worker for its own Podman service; --podman-conf replaces it.\n")
	fmt.Fprintf(&b, "[containers]\ndefault_ulimits = [\"nofile=%d:%d\", \"nproc=%d:%d\"]\n", nofile, nofile, nproc, nproc)
	fmt.Fprintf(&b, "[engine]\nlock_type = \"file\"\n")
	if _, err := exec.LookPath("runc"); err == nil {
		fmt.Fprintf(&b, "runtime = \"runc\"\n")
	}
	return b.String()
}

// stop ends the service: SIGTERM, then SIGKILL if it lingers. Podman
// leaves its storage's overlay folder mounted on itself after the service
// exits; the worker detaches what is mounted under its root, unless
// another worker's service still serves from the same root.
func (s *embeddedService) stop() {
	s.proc.Stop(10 * time.Second)
	os.Remove(s.socket)
	if !otherServiceAnswers(s.root) {
		// The helpers of containers removed at exit (a conmon and its
		// cleanup process) get a moment to finish; the conmons of
		// create's containers, which outlive the worker, are left running
		// (detaching the host's view of their mounts does not touch them).
		podman.AwaitProcesses(s.root, 2*time.Second)
		if err := podman.UnmountUnder(s.root); err != nil {
			s.log.Warn().Err(err).Msg("unmounting the embedded service's storage")
		}
	}
	if err := os.RemoveAll(s.scratch); err != nil {
		s.log.Warn().Err(err).Msg("removing the embedded service's scratch folder")
	}
	s.log.Info().Msg("stopped the embedded podman service")
}

// otherServiceAnswers says whether another worker's embedded service
// serves from root (its podman-PID.sock answers).
func otherServiceAnswers(root string) bool {
	socks, _ := filepath.Glob(filepath.Join(root, "podman-*.sock"))
	for _, sock := range socks {
		if answers(sock) {
			return true
		}
	}
	return false
}

// removeStaleScratch removes the scratch folders under root whose worker
// is gone (two workers may share a root; a live one keeps its folder).
func removeStaleScratch(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "scratch-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "scratch-"))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}
