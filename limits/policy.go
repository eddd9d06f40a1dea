package limits

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/podman-worker/podman-worker/rpc"
)

// Defaults for untrusted function code: the seed CLI's run defaults plus a
// pids limit. A caller may ask for other values only within the Policy.
const (
	DefaultMemory      = "20m"
	DefaultCPUs        = 0.5
	DefaultTimeout     = 5 * time.Second
	DefaultPids        = 128
	DefaultNetworkMode = "none"

	// CPUPeriod is the CFS period the cpus value is expressed against.
	CPUPeriod = 100000
)

// Policy is the worker-level ceiling on what a caller may ask for. It is
// set by the operator (flags and environment), never by a caller.
type Policy struct {
	MaxMemory  int64         // bytes
	MaxCPUs    float64       // cores
	MaxTimeout time.Duration // per run
	MaxPids    int64
	// NetworkModes a caller may choose; "none" is the default and is
	// always allowed.
	NetworkModes []string
}

// DefaultPolicy is what the worker enforces unless configured otherwise.
func DefaultPolicy() Policy {
	return Policy{
		MaxMemory:    1 << 30,
		MaxCPUs:      2,
		MaxTimeout:   10 * time.Minute,
		MaxPids:      1024,
		NetworkModes: []string{"none", "bridge"},
	}
}

// Request is what a caller asked for; empty fields take the defaults.
type Request struct {
	Memory      string      `json:"memory"`
	MemorySwap  string      `json:"memory_swap"`
	CPUs        json.Number `json:"cpus"`
	Timeout     json.Number `json:"timeout"`
	Pids        json.Number `json:"pids_limit"`
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
}

// Resolve applies defaults to r and checks it against p. Errors are
// InvalidParams naming the field and the accepted form, or Forbidden when
// a valid value is above the worker's ceiling.
func (p Policy) Resolve(r Request, withTimeout bool) (Resources, error) {
	var res Resources
	var err error
	if res.Memory, err = size("memory", r.Memory, DefaultMemory, p.MaxMemory); err != nil {
		return res, err
	}
	// No swap unless asked for: memory_swap defaults to memory, the seed's
	// 20m/20m.
	res.MemorySwap = res.Memory
	if r.MemorySwap != "" {
		if res.MemorySwap, err = size("memory_swap", r.MemorySwap, "", math.MaxInt64); err != nil {
			return res, err
		}
	}
	if res.MemorySwap < res.Memory {
		return res, invalid("memory_swap", "%q is below memory (%s): memory_swap is memory plus swap, so it must be at least memory", r.MemorySwap, FormatBytes(res.Memory))
	}
	if res.CPUs, err = cpus(r.CPUs, p.MaxCPUs); err != nil {
		return res, err
	}
	res.CPUQuota = int64(math.Round(res.CPUs * CPUPeriod))
	if withTimeout {
		if res.Timeout, err = timeout(r.Timeout, p.MaxTimeout); err != nil {
			return res, err
		}
	} else if r.Timeout != "" {
		return res, invalid("timeout", "this method takes no timeout")
	}
	if res.Pids, err = pids(r.Pids, p.MaxPids); err != nil {
		return res, err
	}
	if res.NetworkMode, err = network(r.NetworkMode, p.NetworkModes); err != nil {
		return res, err
	}
	return res, nil
}

func size(field, v, def string, ceiling int64) (int64, error) {
	if v == "" {
		// A default never exceeds the operator's ceiling.
		n, _ := ParseBytes(def)
		return min(n, ceiling), nil
	}
	n, err := ParseBytes(v)
	if err != nil {
		return 0, invalid(field, "%v", err)
	}
	if n < 6<<20 && field == "memory" {
		// runc refuses less: the container could not even start.
		return 0, invalid(field, "%q is below the 6m minimum a container needs", v)
	}
	if n > ceiling {
		return 0, forbidden(field, "%q is above this worker's ceiling of %s (--max-memory)", v, FormatBytes(ceiling))
	}
	return n, nil
}

func cpus(v json.Number, ceiling float64) (float64, error) {
	if v == "" {
		return min(DefaultCPUs, ceiling), nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, invalid("cpus", "%q is not a number; use cores such as 0.5", v)
	}
	if f < 0.01 {
		return 0, invalid("cpus", "%v must be at least 0.01 cores", v)
	}
	if f > ceiling {
		return 0, forbidden("cpus", "%v is above this worker's ceiling of %g cores (--max-cpus)", v, ceiling)
	}
	return f, nil
}

func timeout(v json.Number, ceiling time.Duration) (time.Duration, error) {
	if v == "" {
		return min(DefaultTimeout, ceiling), nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, invalid("timeout", "%q is not a number of seconds such as 5", v)
	}
	if f <= 0 {
		return 0, invalid("timeout", "%v must be a positive number of seconds", v)
	}
	d := time.Duration(f * float64(time.Second))
	if d > ceiling {
		return 0, forbidden("timeout", "%vs is above this worker's ceiling of %s (--max-timeout)", v, ceiling)
	}
	return d, nil
}

func pids(v json.Number, ceiling int64) (int64, error) {
	if v == "" {
		return min(DefaultPids, ceiling), nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 1 {
		return 0, invalid("pids_limit", "%q must be a whole number of processes, at least 1", v)
	}
	if n > ceiling {
		return 0, forbidden("pids_limit", "%d is above this worker's ceiling of %d (--max-pids)", n, ceiling)
	}
	return n, nil
}

func network(v string, allowed []string) (string, error) {
	if v == "" {
		return DefaultNetworkMode, nil
	}
	switch v {
	case "none", "bridge", "host", "private", "slirp4netns", "pasta":
	default:
		return "", invalid("network_mode", "%q is not a network mode; use none, bridge or host", v)
	}
	for _, a := range allowed {
		if a == v {
			return v, nil
		}
	}
	return "", forbidden("network_mode", "%q is not allowed by this worker's policy (--network-modes %s)", v, strings.Join(allowed, ","))
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

func invalid(field, format string, args ...any) error {
	return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q: "+format, append([]any{field}, args...)...).With("field", field)
}

func forbidden(field, format string, args ...any) error {
	return rpc.Errorf(rpc.KindForbidden, "Forbidden: %q: "+format, append([]any{field}, args...)...).With("field", field)
}
