package podman

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Labels on every container the worker creates. The owner label scopes
// what workers see and act on (containers of other owners, or made by
// hand, do not exist for them); the others say which worker process made
// the container, so that a later worker can tell whether that process is
// still alive.
const (
	LabelOwner    = "io.podman-worker.owner"
	LabelInstance = "io.podman-worker.instance"
	LabelMachine  = "io.podman-worker.machine"
	LabelBoot     = "io.podman-worker.boot"
	LabelPID      = "io.podman-worker.pid"
	// LabelPIDNS is the PID namespace the pid label counts in: a pid means
	// nothing to a worker in another one.
	LabelPIDNS = "io.podman-worker.pidns"
	LabelStart = "io.podman-worker.start"
	// LabelKept marks a container handed over to the caller (create, and
	// run with auto_remove false): it is meant to outlive the call and
	// the worker, so the sweep of a dead worker's containers leaves it.
	LabelKept = "io.podman-worker.kept"
	// LabelWarm marks a prewarmed container: created and initialised
	// ahead of a run. Until a run starts it, callers do not see it.
	LabelWarm = "io.podman-worker.warm"
)

// DefaultOwner is the owner label's value unless the operator sets one.
const DefaultOwner = "podman-worker"

// Identity says which worker process made a container: its owner, a
// random instance id, and where and when the process runs (machine, boot,
// pid and its start time, which together name one process even after its
// pid is reused).
type Identity struct {
	Owner    string
	Instance string
	Machine  string
	Boot     string
	PID      int
	Start    string // the process's start time in clock ticks since boot
	// PIDNS is the process's PID namespace ("pid:[4026531836]"), in which
	// PID and Start mean what they say.
	PIDNS string
}

// Self is the identity of this process under owner.
func Self(owner string, pid int) Identity {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return Identity{
		Owner: owner, Instance: hex.EncodeToString(b), Machine: machineID(),
		Boot: readTrimmed("/proc/sys/kernel/random/boot_id"), PID: pid, Start: startTime(pid),
		PIDNS: pidNamespace(),
	}
}

// Labels are the labels that carry the identity, for a container that
// lives as long as the call that made it, or, kept, longer.
func (id Identity) Labels(kept bool) map[string]string {
	l := map[string]string{
		LabelOwner: id.Owner, LabelInstance: id.Instance, LabelMachine: id.Machine,
		LabelBoot: id.Boot, LabelPID: strconv.Itoa(id.PID), LabelStart: id.Start, LabelPIDNS: id.PIDNS,
	}
	// Every label the worker reads is set here, true or false: a
	// container also takes its image's labels, and an image that says
	// io.podman-worker.kept=true would otherwise make the sweep of a
	// dead worker's containers skip it.
	l[LabelKept], l[LabelWarm] = strconv.FormatBool(kept), "false"
	return l
}

// liveness is what a container's labels say about the worker that made it.
type liveness int

const (
	alive   liveness = iota // that worker process runs
	dead                    // it does not: its containers are leftovers
	unknown                 // it ran on another machine: nothing can be said
)

// livenessOf judges the worker that made a container with these labels,
// from this process's point of view.
func (id Identity) livenessOf(labels map[string]string) liveness {
	switch {
	case labels[LabelInstance] == id.Instance:
		return alive
	case labels[LabelMachine] != id.Machine || id.Machine == "":
		return unknown
	case labels[LabelBoot] != id.Boot:
		return dead // the machine has restarted since
	case labels[LabelPIDNS] != id.PIDNS && labels[LabelPIDNS] != "":
		// Its pid counts in another PID namespace: what /proc shows here
		// says nothing about it (a worker started with unshare --pid
		// took a live worker's running container for a dead one's).
		return unknown
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return dead // made by a worker that did not label its process
	}
	if start := startTime(pid); start == "" || start != labels[LabelStart] {
		return dead // no such process, or another one with the same pid
	}
	return alive
}

// pidNamespace names this process's PID namespace; "" where it cannot be
// read.
func pidNamespace() string {
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return ns
}

// machineID names this machine: systemd's machine id, else the hostname.
func machineID() string {
	if id := readTrimmed("/etc/machine-id"); id != "" {
		return id
	}
	h, _ := os.Hostname()
	return h
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot; "" when there is no such process.
func startTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing parenthesis.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	fields := strings.Fields(rest)
	if len(fields) < 20 {
		return ""
	}
	return fields[19] // field 22 overall: fields 3.. start at index 0
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
