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
	f.Fuzz(func(t *testing.T, mem, swap, cpus, timeout, pids, network string) {
		p := DefaultPolicy()
		for _, s := range []string{cpus, timeout, pids} {
			if s != "" && !json.Valid([]byte(s)) {
				return // json.Number only ever holds JSON numbers
			}
		}
		res, err := p.Resolve(Request{Memory: mem, MemorySwap: swap, CPUs: json.Number(cpus), Timeout: json.Number(timeout), Pids: json.Number(pids), NetworkMode: network}, true)
		if err != nil {
			return
		}
		if res.Memory <= 0 || res.Memory > p.MaxMemory || res.MemorySwap < res.Memory || res.CPUs <= 0 || res.CPUs > p.MaxCPUs ||
			res.Timeout <= 0 || res.Timeout > p.MaxTimeout || res.Pids < 1 || res.Pids > p.MaxPids || res.CPUQuota < 1 {
			t.Fatalf("resolved outside the policy: %+v", res)
		}
	})
}
