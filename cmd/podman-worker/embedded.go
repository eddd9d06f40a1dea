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
	cmd     *exec.Cmd
	done    chan error
	log     zerolog.Logger
}

// startEmbedded starts podman's service with its storage under root and,
// when conf is set, that containers.conf (on some machines the defaults
// cannot run containers: crun on cgroup v1, rlimits above the host's).
func startEmbedded(ctx context.Context, root, conf string, log zerolog.Logger) (*embeddedService, error) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, errors.New("no Podman socket is configured or answering, and podman is not installed to start one: install it (apt-get install podman) or pass --socket")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("--podman-root: %w", err)
	}
	socket := filepath.Join(root, fmt.Sprintf("podman-%d.sock", os.Getpid()))
	cmd := exec.Command(podman, "--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run"),
		"--tmpdir", filepath.Join(root, "tmp"), "system", "service", "--time=0", "unix://"+socket)
	// Buildah keeps build bundles in $TMPDIR (else /var/tmp) and leaves one
	// behind for every cancelled build. A folder per worker, removed when
	// the service stops, keeps that from piling up; the folders of workers
	// that died without stopping theirs are removed here.
	removeStaleScratch(root)
	scratch := filepath.Join(root, fmt.Sprintf("scratch-%d", os.Getpid()))
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("--podman-root: %w", err)
	}
	cmd.Env = append(os.Environ(), "TMPDIR="+scratch)
	if conf != "" {
		abs, err := filepath.Abs(conf)
		if err != nil {
			return nil, fmt.Errorf("--podman-conf: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--podman-conf: %w", err)
		}
		cmd.Env = append(cmd.Env, "CONTAINERS_CONF="+abs)
	}
	// Its own folder as working directory: conmon may leave files there.
	cmd.Dir = root
	logFile, err := os.OpenFile(filepath.Join(root, "service.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the worker dies without stopping it, the kernel stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting podman system service: %w", err)
	}
	s := &embeddedService{socket: socket, scratch: scratch, cmd: cmd, done: make(chan error, 1), log: log}
	go func() { s.done <- cmd.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for !answers(socket) {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("podman system service exited at once (%v); see %s", err, filepath.Join(root, "service.log"))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("podman system service did not answer at %s within 30 s; see %s", socket, filepath.Join(root, "service.log"))
		}
	}
	log.Info().Str("socket", socket).Str("root", root).Int("pid", cmd.Process.Pid).Msg("started an embedded podman service")
	return s, nil
}

// stop ends the service: SIGTERM, then SIGKILL if it lingers.
func (s *embeddedService) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
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
