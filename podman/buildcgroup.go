package podman

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
)

// Why this file exists: Podman's build API has no pids limit for RUN steps
// and no way to stop one. A client that disconnects (a timeout) ends the
// request, but Buildah runs the current RUN step to its end, however long
// that is, before it notices. Buildah does take a cgroup parent, which it
// gives the runtime as the RUN step's cgroup path. So, when the worker is
// on Podman's host and Podman manages cgroups itself (cgroupfs), each build
// gets a cgroup of the worker's own: its pids.max bounds every RUN step,
// and killing its processes ends a step that ran past the build's timeout.

// BuildCgroup is the cgroup a build's RUN steps run below.
type BuildCgroup struct {
	top  string   // "/podman-worker-build-<hex>", relative to each hierarchy
	dirs []string // the host folders of top that the worker made, one per hierarchy
	v2   bool
}

// Parent is what the build gives Buildah as its cgroup parent: a child of
// the worker's cgroup, since the runtime removes the cgroup it is given
// after each step and the limit must outlive the steps.
func (g *BuildCgroup) Parent() string { return g.top + "/run" }

// NewBuildCgroup makes a cgroup whose pids.max is pids for one build. It
// answers nil and the reason when that is not possible: Podman is not on
// this host, manages cgroups through systemd (whose runtime takes a
// slice, not a path), or the worker may not write the host's cgroups.
func (c *Client) NewBuildCgroup(ctx context.Context, pids int64) (*BuildCgroup, string) {
	if !c.local() {
		return nil, "Podman is not on the worker's host (tcp or ssh), so the worker cannot make cgroups there"
	}
	host, err := c.hostFacts(ctx)
	if err != nil {
		return nil, "asking Podman for its cgroup manager: " + err.Error()
	}
	if host.cgroupManager != "cgroupfs" {
		return nil, "Podman's cgroup manager is " + host.cgroupManager + ", not cgroupfs"
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	g := &BuildCgroup{top: "/podman-worker-build-" + hex.EncodeToString(b)}
	limit := strconv.FormatInt(pids, 10)
	// cgroup v2: one hierarchy; pids.max appears only where the pids
	// controller is enabled for the root's children. cgroup v1: the pids
	// controller has a hierarchy of its own; the runtime makes the folder
	// in every other hierarchy, and Remove removes them all.
	dir := filepath.Join(cgroupRoot, "pids", g.top)
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		g.v2 = true
		dir = filepath.Join(cgroupRoot, g.top)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, "making " + dir + ": " + err.Error()
	}
	g.dirs = []string{dir}
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(limit), 0o644); err != nil {
		g.Remove()
		return nil, "setting pids.max in " + dir + ": " + err.Error()
	}
	return g, ""
}

// Kill sends SIGKILL to every process in the cgroup and below, and
// answers how many it found.
func (g *BuildCgroup) Kill() int {
	n := 0
	for _, dir := range g.dirs {
		if g.v2 {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0o644); err == nil {
				n += len(procs(dir))
				continue
			}
		}
		for _, pid := range procs(dir) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}

// procs lists the pids in dir and every cgroup below it.
func procs(dir string) []int {
	var out []int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// Remove deletes the cgroup's folders in every hierarchy once their
// processes are gone (waiting up to a few seconds for the runtime's own
// clean-up), deepest first. A cgroup folder is removed with rmdir: its
// files are the kernel's.
func (g *BuildCgroup) Remove() error {
	var dirs []string
	if g.v2 {
		dirs = g.dirs
	} else {
		// The runtime made the top folder in each v1 hierarchy.
		matches, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", g.top))
		dirs = matches
	}
	var errs []error
	for _, top := range dirs {
		var all []string
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				all = append(all, path)
			}
			return nil
		})
		slices.Reverse(all) // children first
		for _, d := range all {
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond) // EBUSY: a process is still leaving
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// BuildBounds are what bounds a build: its timeout, the grace its RUN
// step gets to die once killed, its cgroup (nil: none), and the most
// bytes its context may hold, unpacked.
type BuildBounds struct {
	Timeout, KillGrace time.Duration
	Group              *BuildCgroup
	MaxContext         int64
}

// BuildEnd says why a build ended early.
type BuildEnd struct {
	TimedOut        bool // its timeout passed
	ContextExceeded bool // its context was larger than MaxContext
}

// Build runs a build within b. The build's own context outlives ctx by
// the kill grace: at the timeout (or a cancel of ctx) the worker first
// kills the RUN step through the build's cgroup, again on every tick so
// that a step starting after the first kill dies too, so that Podman
// fails the build and removes its build container; only then, or after
// the grace, does it stop waiting.
func (c *Client) Build(ctx context.Context, containerfile string, opts types.BuildOptions, b BuildBounds) (*types.BuildReport, BuildEnd, error) {
	buildCtx, stopBuild := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBuild()
	finished := make(chan struct{})
	var timedOut atomic.Bool
	go func() {
		timer := time.NewTimer(b.Timeout)
		defer timer.Stop()
		select {
		case <-finished:
			return
		case <-ctx.Done():
		case <-timer.C:
			timedOut.Store(true)
		}
		if b.Group != nil {
			grace := time.NewTimer(b.KillGrace)
			defer grace.Stop()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for b.Group.Kill(); ; b.Group.Kill() {
				select {
				case <-finished:
					return
				case <-grace.C:
					stopBuild()
					return
				case <-tick.C:
				}
			}
		}
		stopBuild()
	}()
	buildCtx, upload := LimitUpload(buildCtx, b.MaxContext)
	report, err := images.Build(buildCtx, []string{containerfile}, opts)
	close(finished)
	return report, BuildEnd{TimedOut: timedOut.Load(), ContextExceeded: upload.Exceeded()}, err
}
