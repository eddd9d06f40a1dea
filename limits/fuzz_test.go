package limits

import (
	"encoding/json"
	"testing"
)

// FuzzParseBytes: no panic; an accepted size is positive and survives a
// round trip through FormatBytes.
func FuzzParseBytes(f *testing.F) {
	for _, seed := range []string{"20m", "512k", "1g", "4096", "0", "-1m", "1.5g", "9223372036854775807", "16MiB", "mb", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n <= 0 {
			t.Fatalf("ParseBytes(%q) = %d", s, n)
		}
		if back, err := ParseBytes(FormatBytes(n)); err != nil || back != n {
			t.Fatalf("ParseBytes(%q) = %d, but FormatBytes gives %q -> %d, %v", s, n, FormatBytes(n), back, err)
		}
	})
}

// FuzzResolve: any request resolves within the policy or fails naming a field.
func FuzzResolve(f *testing.F) {
	f.Add("20m", "20m", "0.5", "5", "128", "none")
	f.Add("1g", "", "2", "600", "1024", "bridge")
	f.Add("x", "y", "z", "w", "v", "u")
	f.Add("20m", "8t", "0.5", "1e10", "128", "none")
	f.Add("-0", "99999999999t", "-0", "-0", "-0", "bridge")
	f.Add("1g", "1g", "2", "600.0000000000001", "1024", "host")
	f.Fuzz(func(t *testing.T, mem, swap, cpus, timeout, pids, network string) {
		p := DefaultPolicy()
		for _, s := range []string{cpus, timeout, pids} {
			if s != "" && !json.Valid([]byte(s)) {
				return // json.Number only ever holds JSON numbers
			}
		}
		res, err := p.Resolve(Request{Memory: mem, MemorySwap: swap, CPUs: json.Number(cpus), Timeout: json.Number(timeout), Pids: json.Number(pids), NetworkMode: network}, true)
		if err == nil && (res.Memory <= 0 || res.Memory > p.MaxMemory || res.MemorySwap < res.Memory || res.MemorySwap > p.MaxMemorySwap ||
			res.CPUs <= 0 || res.CPUs > p.MaxCPUs || res.Timeout <= 0 || res.Timeout > p.MaxTimeout || res.Pids < 1 || res.Pids > p.MaxPids ||
			res.CPUQuota < 1 || res.NetworkMode != "none") {
			t.Fatalf("resolved outside the policy: %+v", res)
		}
		res, err = p.ResolveBuild(BuildRequest{Memory: mem, MemorySwap: swap, CPUs: json.Number(cpus), Timeout: json.Number(timeout), Pids: json.Number(pids), NetworkMode: network})
		if err == nil && (res.Memory <= 0 || res.Memory > p.MaxMemory || res.MemorySwap < res.Memory || res.MemorySwap > p.MaxMemorySwap ||
			res.CPUs <= 0 || res.CPUs > p.MaxCPUs || res.Timeout <= 0 || res.Timeout > p.MaxBuildTimeout || res.Pids < 1 || res.Pids > p.MaxPids ||
			res.NetworkMode != "none") {
			t.Fatalf("build resolved outside the policy: %+v", res)
		}
	})
}
