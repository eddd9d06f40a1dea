package limits

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/podman-worker/podman-worker/fault"
)

// Defaults for untrusted function code: the seed CLI's run defaults plus a
// pids limit. A caller may ask for other values only within the Policy.
const (
	DefaultMemory      = "20m"
	DefaultCPUs        = 0.5
	DefaultTimeout     = 5 * time.Second
	DefaultPids        = 128
	DefaultNetworkMode = "none"

	// A build's RUN steps install packages and compile: more room than a
	// function invocation, still bounded, and still clamped by the same
	// ceilings.
	DefaultBuildMemory  = "512m"
	DefaultBuildCPUs    = 1.0
	DefaultBuildTimeout = 10 * time.Minute
	DefaultBuildPids    = 256

	// CPUPeriod is the CFS period the cpus value is expressed against.
	CPUPeriod = 100000
)

// Policy is what the operator allows callers, set by flags and the
// environment, never by a caller: ceilings on the limits a caller may ask
// for, and how far the sandbox of function containers and builds is
// widened. Its zero values are the safe side: no host path, no capability,
// no privileged port, a read-only root filesystem, no user namespace
// choice beyond Podman's default.
type Policy struct {
	MaxMemory int64 // bytes
	// MaxMemorySwap caps memory_swap (memory plus swap); 0 means MaxMemory,
	// so no swap beyond the memory ceiling.
	MaxMemorySwap int64
	MaxCPUs       float64       // cores
	MaxTimeout    time.Duration // per run
	MaxPids       int64
	// NetworkModes a caller may choose; "none" is the default and is
	// always allowed.
	NetworkModes []string

	// AllowCaps are the capabilities (names without CAP_) a caller may add
	// back with cap_add; every other one is dropped.
	AllowCaps []string
	// PortAddresses are the host addresses published ports may bind to;
	// the first is used when a port names none. Empty means 127.0.0.1.
	PortAddresses []string
	// AllowPrivilegedPorts lets published ports use host ports below 1024.
	AllowPrivilegedPorts bool

	// AllowNamedVolumes lets run and create mount named volumes, each the
	// owner's own; they are host disk shared by name, so none by default.
	AllowNamedVolumes bool

	// MountRoots are the host directories under which bind-mount sources
	// may lie (resolved, absolute); empty allows no host path at all.
	MountRoots []string
	// NeverMount are host paths that are never mounted whatever
	// MountRoots say, nor any path inside one or containing one.
	NeverMount []string

	// BuildRoots are the host directories under which build contexts
	// (and Containerfiles) may lie; empty refuses every build.
	BuildRoots []string
	// MaxBuildContext caps the bytes of a build context's files.
	MaxBuildContext int64
	// MaxBuildTimeout caps a build's timeout.
	MaxBuildTimeout time.Duration
	// BuildContextMounts lets RUN steps bind-mount parts of their own
	// build context (read-only, no symlinks); other RUN mounts, but
	// tmpfs, stay refused.
	BuildContextMounts bool
	// SharedImages are the operator's base images (names or ids) that
	// every owner sees, runs and builds FROM, and none changes; an
	// owner's other images are the ones it built.
	SharedImages []string

	// MaxLogBytes caps the log file of a long-lived (create) container.
	MaxLogBytes int64
	// MaxContainers caps the long-lived containers (create's, and runs
	// kept with auto_remove false) an owner holds on a connection.
	MaxContainers int
	// WritableRoot gives function containers a writable root filesystem
	// (host disk) instead of a read-only one with tmpfs scratch space.
	WritableRoot bool
	// UserNS is the user namespace of function containers: "" (Podman's
	// default: container root is host root) or "auto" (a range of
	// /etc/subuid's "containers" entry per container).
	UserNS string
	// AllowSpecialModes lets add_file write set-uid, set-gid and sticky
	// modes.
	AllowSpecialModes bool
}

// DefaultPolicy is what the worker enforces unless configured otherwise.
func DefaultPolicy() Policy {
	return Policy{
		MaxMemory:       1 << 30,
		MaxMemorySwap:   1 << 30,
		MaxCPUs:         2,
		MaxTimeout:      10 * time.Minute,
		MaxPids:         1024,
		NetworkModes:    []string{"none"},
		MaxContainers:   32,
		PortAddresses:   []string{"127.0.0.1"},
		NeverMount:      []string{"/", "/proc", "/sys", "/dev", "/run/podman"},
		MaxBuildContext: 256 << 20,
		MaxBuildTimeout: 30 * time.Minute,
		MaxLogBytes:     10 << 20,
	}
}

// Request is what a caller asked for; empty fields take the defaults.
type Request struct {
	Memory      string      `json:"memory" want:"a size such as \"20m\""`
	MemorySwap  string      `json:"memory_swap" want:"a size such as \"20m\""`
	CPUs        json.Number `json:"cpus" want:"a number of CPUs, such as 0.5"`
	Timeout     json.Number `json:"timeout" want:"a number of seconds"`
	Pids        json.Number `json:"pids_limit" want:"a whole number of processes"`
	NetworkMode string      `json:"network_mode"`
	// CapAdd asks for capabilities back, within Policy.AllowCaps.
	CapAdd []string `json:"cap_add"`
}

// BuildRequest is what a caller asked for a build's RUN steps.
type BuildRequest struct {
	Memory      string      `json:"memory" want:"a size such as \"20m\""`
	MemorySwap  string      `json:"memory_swap" want:"a size such as \"20m\""`
	CPUs        json.Number `json:"cpus" want:"a number of CPUs, such as 0.5"`
	Timeout     json.Number `json:"timeout" want:"a number of seconds"`
	Pids        json.Number `json:"pids_limit" want:"a whole number of processes"`
	NetworkMode string      `json:"network_mode"`
}

// Resources are resolved, checked limits, ready for a container spec.
type Resources struct {
	Memory      int64 // bytes
	MemorySwap  int64 // bytes of memory plus swap, as podman's --memory-swap
	CPUQuota    int64 // microseconds per CPUPeriod
	CPUs        float64
	Timeout     time.Duration // 0 when the request has no timeout (long-lived containers)
	Pids        int64
	NetworkMode string
	// CapAdd are the capabilities given back ("CAP_" names), all within
	// Policy.AllowCaps.
	CapAdd []string
}

// defaults are what an empty request field becomes, before the ceilings.
type defaults struct {
	memory  string
	cpus    float64
	timeout time.Duration
	pids    int64
}

// Resolve applies defaults to r and checks it against p. Errors are
// InvalidParams naming the field and the accepted form, or Forbidden when
// a valid value is above the worker's ceiling.
func (p Policy) Resolve(r Request, withTimeout bool) (Resources, error) {
	res, err := p.resolve(Request{Memory: r.Memory, MemorySwap: r.MemorySwap, CPUs: r.CPUs, Timeout: r.Timeout, Pids: r.Pids},
		defaults{DefaultMemory, DefaultCPUs, DefaultTimeout, DefaultPids})
	if err != nil {
		return res, err
	}
	if withTimeout {
		if res.Timeout, err = timeout(r.Timeout, DefaultTimeout, p.MaxTimeout, "--max-timeout"); err != nil {
			return res, err
		}
	} else if r.Timeout != "" {
		return res, fault.Invalid("timeout", "this method takes no timeout")
	}
	if res.NetworkMode, err = network(r.NetworkMode, p.NetworkModes, false); err != nil {
		return res, err
	}
	if res.CapAdd, err = p.capAdd(r.CapAdd); err != nil {
		return res, err
	}
	return res, nil
}

// ResolveBuild applies the build defaults (512m, 1 cpu, 256 pids, 10
// minutes, no network) to r and checks it against the same ceilings as
// run, the timeout against MaxBuildTimeout.
func (p Policy) ResolveBuild(r BuildRequest) (Resources, error) {
	res, err := p.resolve(Request{Memory: r.Memory, MemorySwap: r.MemorySwap, CPUs: r.CPUs, Pids: r.Pids},
		defaults{DefaultBuildMemory, DefaultBuildCPUs, DefaultBuildTimeout, DefaultBuildPids})
	if err != nil {
		return res, err
	}
	if res.Timeout, err = timeout(r.Timeout, DefaultBuildTimeout, p.MaxBuildTimeout, "--max-build-timeout"); err != nil {
		return res, err
	}
	if res.NetworkMode, err = network(r.NetworkMode, p.NetworkModes, true); err != nil {
		return res, err
	}
	return res, nil
}

// resolve reads the limits run, create and build share.
func (p Policy) resolve(r Request, def defaults) (Resources, error) {
	var res Resources
	var err error
	if res.Memory, err = size("memory", r.Memory, def.memory, p.MaxMemory, "--max-memory"); err != nil {
		return res, err
	}
	// No swap unless asked for: memory_swap defaults to memory, the seed's
	// 20m/20m. Its ceiling defaults to the memory ceiling, so a caller
	// cannot turn host swap into memory the operator did not grant.
	swapCeiling := p.MaxMemorySwap
	if swapCeiling == 0 {
		swapCeiling = p.MaxMemory
	}
	res.MemorySwap = res.Memory
	if r.MemorySwap != "" {
		if res.MemorySwap, err = size("memory_swap", r.MemorySwap, "", swapCeiling, "--max-memory-swap"); err != nil {
			return res, err
		}
	}
	if res.MemorySwap < res.Memory {
		return res, fault.Invalid("memory_swap", "%q is below memory (%s): memory_swap is memory plus swap, so it must be at least memory", r.MemorySwap, FormatBytes(res.Memory))
	}
	if res.CPUs, err = cpus(r.CPUs, def.cpus, p.MaxCPUs); err != nil {
		return res, err
	}
	res.CPUQuota = int64(math.Round(res.CPUs * CPUPeriod))
	if res.Pids, err = pids(r.Pids, def.pids, p.MaxPids); err != nil {
		return res, err
	}
	return res, nil
}

func size(field, v, def string, ceiling int64, flag string) (int64, error) {
	if v == "" {
		// A default never exceeds the operator's ceiling.
		n, _ := ParseBytes(def)
		return min(n, ceiling), nil
	}
	n, err := ParseBytes(v)
	if err != nil {
		return 0, fault.Invalid(field, "%v", err)
	}
	if n < 6<<20 && field == "memory" {
		// runc refuses less: the container could not even start.
		return 0, fault.Invalid(field, "%q is below the 6m minimum a container needs", v)
	}
	if n > ceiling {
		return 0, fault.Forbidden(field, "%q is above this worker's ceiling of %s (%s)", v, FormatBytes(ceiling), flag)
	}
	return n, nil
}

func cpus(v json.Number, def, ceiling float64) (float64, error) {
	if v == "" {
		return min(def, ceiling), nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fault.Invalid("cpus", "%q is not a number; use cores such as 0.5", v)
	}
	if f < 0.01 {
		return 0, fault.Invalid("cpus", "%v must be at least 0.01 cores", v)
	}
	if f > ceiling {
		return 0, fault.Forbidden("cpus", "%v is above this worker's ceiling of %g cores (--max-cpus)", v, ceiling)
	}
	return f, nil
}

func timeout(v json.Number, def, ceiling time.Duration, flag string) (time.Duration, error) {
	if v == "" {
		return min(def, ceiling), nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fault.Invalid("timeout", "%q is not a number of seconds such as 5", v)
	}
	if f <= 0 { // -0 included
		return 0, fault.Invalid("timeout", "%v must be a positive number of seconds", v)
	}
	// Compared in seconds, before any conversion: past ~292 years a
	// time.Duration overflows to a negative value (1e10 s became one),
	// which a comparison after the conversion lets through and the run
	// then times out at once.
	if f > ceiling.Seconds() {
		return 0, fault.Forbidden("timeout", "%vs is above this worker's ceiling of %s (%s)", v, ceiling, flag)
	}
	// Float rounding may put f a hair above the ceiling it equals.
	d := min(time.Duration(f*float64(time.Second)), ceiling)
	if d <= 0 {
		return 0, fault.Invalid("timeout", "%v is shorter than a nanosecond", v)
	}
	return d, nil
}

func pids(v json.Number, def, ceiling int64) (int64, error) {
	if v == "" {
		return min(def, ceiling), nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 1 {
		return 0, fault.Invalid("pids_limit", "%q must be a whole number of processes, at least 1", v)
	}
	if n > ceiling {
		return 0, fault.Forbidden("pids_limit", "%d is above this worker's ceiling of %d (--max-pids)", n, ceiling)
	}
	return n, nil
}

func network(v string, allowed []string, build bool) (string, error) {
	if v == "" {
		return DefaultNetworkMode, nil
	}
	switch v {
	case "none", "bridge", "host":
	case "private", "slirp4netns", "pasta":
		if build {
			return "", fault.Invalid("network_mode", "%q is not a network mode for builds; use none, bridge or host", v)
		}
	default:
		return "", fault.Invalid("network_mode", "%q is not a network mode; use none, bridge or host", v)
	}
	for _, a := range allowed {
		if a == v {
			return v, nil
		}
	}
	return "", fault.Forbidden("network_mode", "%q is not allowed by this worker's policy (--network-modes %s)", v, strings.Join(allowed, ","))
}

// ParseNetworkModes parses the operator's list, e.g. "none,bridge".
func ParseNetworkModes(s string) ([]string, error) {
	out := []string{"none"}
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		switch m {
		case "", "none":
		case "bridge", "host", "private", "slirp4netns", "pasta":
			out = append(out, m)
		default:
			return nil, fmt.Errorf("%q is not a network mode (none, bridge, host, private, slirp4netns, pasta)", m)
		}
	}
	return out, nil
}

// FormatBytes writes a size the way ParseBytes reads it, for messages.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
