package podman

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Why this file exists: Podman says whether the memory limit killed a
// container (State.OOMKilled) only where it sees the kernel's OOM event,
// and Podman 4.3 on cgroup v1 never does (its conmon writes the marker to
// the wrong folder). An exit status of 137 alone cannot tell an OOM kill
// from `exit 137` or a SIGKILL from elsewhere. The kernel keeps the count
// of OOM kills in the container's memory cgroup, which the worker can read
// when it runs on Podman's host (a unix socket) until Podman's clean-up
// removes the cgroup, tens of milliseconds after the process exits. So
// the files are opened while the container runs and read the moment its
// output ends, which is the first sign of the exit.

// cgroupRoot is where the host's cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// MemoryEvidence is what the kernel recorded about a container's memory.
type MemoryEvidence struct {
	// Known says the container's memory cgroup was read; without it the
	// other fields mean nothing.
	Known bool
	// OOMKills is how many processes the memory limit's OOM killer killed.
	OOMKills int64
	// Peak is the most memory the container used, in bytes (0: unknown).
	Peak int64
	// Why says why the cgroup could not be read, when Known is false.
	Why string
}

// MemoryWatch reads a container's memory cgroup when its output ends.
type MemoryWatch struct {
	// v1: memory.oom_control, memory.max_usage_in_bytes; v2:
	// memory.events, memory.peak. They are closed once read; a run that
	// times out or is cancelled ends the attach too, so ended always
	// closes.
	files []*os.File
	done  chan struct{}
	ev    MemoryEvidence
}

// WatchMemory opens the memory cgroup of container id, if the worker can
// see it, and reads it as soon as ended closes. Call it once the
// container's process exists (after Attach: attaching creates it).
func (c *Client) WatchMemory(id string, ended <-chan struct{}) *MemoryWatch {
	w := &MemoryWatch{done: make(chan struct{})}
	if !c.local() {
		w.ev.Why = "Podman is not on the worker's host (tcp or ssh), so its cgroups are not visible to the worker"
		close(w.done)
		return w
	}
	w.open(id)
	if len(w.files) == 0 {
		close(w.done)
		return w
	}
	go func() {
		<-ended
		w.read()
		close(w.done)
	}()
	return w
}

// Evidence waits for the read (it happens when the output ends) and
// answers what it found.
func (w *MemoryWatch) Evidence() MemoryEvidence {
	<-w.done
	return w.ev
}

// memoryCgroups are where Podman puts a container's memory cgroup: with
// the cgroupfs manager under libpod_parent, with systemd under
// machine.slice; on cgroup v1 below the memory controller's mount.
func memoryCgroups(id string) []string {
	var out []string
	for _, base := range []string{filepath.Join(cgroupRoot, "memory"), cgroupRoot} {
		out = append(out,
			filepath.Join(base, "libpod_parent", "libpod-"+id),
			filepath.Join(base, "machine.slice", "libpod-"+id+".scope"),
		)
	}
	return out
}

func (w *MemoryWatch) open(id string) {
	for _, dir := range memoryCgroups(id) {
		if f, err := os.Open(filepath.Join(dir, "memory.oom_control")); err == nil {
			w.files = append(w.files, f)
			if p, err := os.Open(filepath.Join(dir, "memory.max_usage_in_bytes")); err == nil {
				w.files = append(w.files, p)
			}
			return
		}
		if f, err := os.Open(filepath.Join(dir, "memory.events")); err == nil {
			w.files = append(w.files, f)
			if p, err := os.Open(filepath.Join(dir, "memory.peak")); err == nil {
				w.files = append(w.files, p)
			}
			return
		}
	}
	w.ev.Why = "the container's memory cgroup was not found under " + cgroupRoot
}

func (w *MemoryWatch) read() {
	defer func() {
		for _, f := range w.files {
			f.Close()
		}
	}()
	buf := make([]byte, 4096)
	n, err := w.files[0].ReadAt(buf, 0)
	if n == 0 {
		// ENODEV: Podman's clean-up removed the cgroup first.
		w.ev.Why = "the container's cgroup was removed before the worker could read it"
		if err != nil {
			w.ev.Why += " (" + err.Error() + ")"
		}
		return
	}
	// v1 memory.oom_control and v2 memory.events both have "oom_kill N".
	kills, ok := field(buf[:n], "oom_kill")
	if !ok {
		w.ev.Why = "the kernel does not count OOM kills in " + w.files[0].Name()
		return
	}
	w.ev.Known, w.ev.OOMKills = true, kills
	if len(w.files) > 1 {
		if n, _ := w.files[1].ReadAt(buf, 0); n > 0 {
			w.ev.Peak, _ = strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
		}
	}
}

// field reads "name N" from a cgroup key-value file.
func field(data []byte, name string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == name {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
