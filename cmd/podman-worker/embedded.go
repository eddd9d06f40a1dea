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
	return &embeddedService{socket: socket, scratch: scratch, proc: proc, log: log}, nil
}

// stop ends the service: SIGTERM, then SIGKILL if it lingers.
func (s *embeddedService) stop() {
	s.proc.Stop(10 * time.Second)
	os.Remove(s.socket)
	if err := os.RemoveAll(s.scratch); err != nil {
		s.log.Warn().Err(err).Msg("removing the embedded service's scratch folder")
	}
	s.log.Info().Msg("stopped the embedded podman service")
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
