package limits

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/fault"
)

func TestResolveDefaults(t *testing.T) {
	res, err := DefaultPolicy().Resolve(Request{}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := Resources{Memory: 20 << 20, MemorySwap: 20 << 20, CPUQuota: 50000, CPUs: 0.5, Timeout: 5 * time.Second, Pids: DefaultPids, NetworkMode: "none"}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("defaults: got %+v, want %+v", res, want)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		req     string // JSON of a Request
		timeout bool
		check   func(Resources) bool
		kind    fault.Kind // expected error kind, or -1 for none
		field   string
	}{
		{"memory and swap follow", `{"memory":"64m"}`, true, func(r Resources) bool { return r.Memory == 64<<20 && r.MemorySwap == 64<<20 }, -1, ""},
		{"swap above memory", `{"memory":"20m","memory_swap":"50m"}`, true, func(r Resources) bool { return r.MemorySwap == 50<<20 }, -1, ""},
		{"cpus 1.5", `{"cpus":1.5}`, true, func(r Resources) bool { return r.CPUQuota == 150000 }, -1, ""},
		{"fractional timeout", `{"timeout":0.5}`, true, func(r Resources) bool { return r.Timeout == 500*time.Millisecond }, -1, ""},
		{"bridge refused by default", `{"network_mode":"bridge"}`, true, nil, fault.KindForbidden, "network_mode"},
		{"swap above the memory ceiling", `{"memory_swap":"8t"}`, true, nil, fault.KindForbidden, "memory_swap"},
		{"swap at the ceiling", `{"memory_swap":"1g"}`, true, func(r Resources) bool { return r.MemorySwap == 1<<30 }, -1, ""},
		{"swap that overflows", `{"memory_swap":"99999999999t"}`, true, nil, fault.KindInvalidParams, "memory_swap"},
		{"memory that overflows", `{"memory":"9223372036854775807k"}`, true, nil, fault.KindInvalidParams, "memory"},
		{"timeout past what a duration holds", `{"timeout":1e10}`, true, nil, fault.KindForbidden, "timeout"},
		{"timeout far past", `{"timeout":1e300}`, true, nil, fault.KindForbidden, "timeout"},
		{"timeout out of float range", `{"timeout":1e400}`, true, nil, fault.KindInvalidParams, "timeout"},
		{"timeout below a nanosecond", `{"timeout":1e-12}`, true, nil, fault.KindInvalidParams, "timeout"},
		{"timeout negative zero", `{"timeout":-0}`, true, nil, fault.KindInvalidParams, "timeout"},
		{"timeout negative zero string", `{"timeout":"-0.0"}`, true, nil, fault.KindInvalidParams, "timeout"},
		{"timeout at the ceiling", `{"timeout":600}`, true, func(r Resources) bool { return r.Timeout == 10*time.Minute }, -1, ""},
		{"cpus negative zero", `{"cpus":-0}`, true, nil, fault.KindInvalidParams, "cpus"},
		{"pids negative zero", `{"pids_limit":-0}`, true, nil, fault.KindInvalidParams, "pids_limit"},
		{"pids that overflow", `{"pids_limit":99999999999999999999}`, true, nil, fault.KindInvalidParams, "pids_limit"},
		{"memory negative zero", `{"memory":"-0"}`, true, nil, fault.KindInvalidParams, "memory"},
		{"cap_add not allowed", `{"cap_add":["NET_RAW"]}`, true, nil, fault.KindForbidden, "cap_add"},
		{"cap_add unknown", `{"cap_add":["WIZARDRY"]}`, true, nil, fault.KindInvalidParams, "cap_add"},
		{"cap_add empty list", `{"cap_add":[]}`, true, func(r Resources) bool { return len(r.CapAdd) == 0 }, -1, ""},
		{"pids", `{"pids_limit":10}`, true, func(r Resources) bool { return r.Pids == 10 }, -1, ""},
		{"memory unit unknown", `{"memory":"20x"}`, true, nil, fault.KindInvalidParams, "memory"},
		{"memory zero", `{"memory":"0"}`, true, nil, fault.KindInvalidParams, "memory"},
		{"memory negative", `{"memory":"-20m"}`, true, nil, fault.KindInvalidParams, "memory"},
		{"memory too small to start", `{"memory":"1m"}`, true, nil, fault.KindInvalidParams, "memory"},
		{"memory above ceiling", `{"memory":"2g"}`, true, nil, fault.KindForbidden, "memory"},
		{"swap below memory", `{"memory":"64m","memory_swap":"20m"}`, true, nil, fault.KindInvalidParams, "memory_swap"},
		{"cpus zero", `{"cpus":0}`, true, nil, fault.KindInvalidParams, "cpus"},
		{"cpus negative", `{"cpus":-1}`, true, nil, fault.KindInvalidParams, "cpus"},
		{"cpus above ceiling", `{"cpus":8}`, true, nil, fault.KindForbidden, "cpus"},
		{"timeout zero", `{"timeout":0}`, true, nil, fault.KindInvalidParams, "timeout"},
		{"timeout negative", `{"timeout":-5}`, true, nil, fault.KindInvalidParams, "timeout"},
		{"timeout above ceiling", `{"timeout":100000}`, true, nil, fault.KindForbidden, "timeout"},
		{"timeout where none is taken", `{"timeout":5}`, false, nil, fault.KindInvalidParams, "timeout"},
		{"pids zero", `{"pids_limit":0}`, true, nil, fault.KindInvalidParams, "pids_limit"},
		{"pids fractional", `{"pids_limit":1.5}`, true, nil, fault.KindInvalidParams, "pids_limit"},
		{"pids above ceiling", `{"pids_limit":100000}`, true, nil, fault.KindForbidden, "pids_limit"},
		{"host network refused by default", `{"network_mode":"host"}`, true, nil, fault.KindForbidden, "network_mode"},
		{"unknown network", `{"network_mode":"wifi"}`, true, nil, fault.KindInvalidParams, "network_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := json.Unmarshal([]byte(tt.req), &req); err != nil {
				t.Fatal(err)
			}
			res, err := DefaultPolicy().Resolve(req, tt.timeout)
			if tt.kind == -1 {
				if err != nil || !tt.check(res) {
					t.Errorf("sent %s: got %+v, %v", tt.req, res, err)
				}
				return
			}
			e, ok := err.(*fault.Error)
			if !ok || e.Kind != tt.kind || e.Fields["field"] != tt.field || !strings.Contains(e.Message, tt.field) {
				t.Errorf("sent %s: got %v (%#v), want kind %v naming %q", tt.req, err, err, tt.kind, tt.field)
			}
		})
	}
}

func TestParseNetworkModes(t *testing.T) {
	got, err := ParseNetworkModes("bridge, host")
	if err != nil || strings.Join(got, ",") != "none,bridge,host" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ParseNetworkModes("bridge,wifi"); err == nil {
		t.Error("an unknown mode was accepted")
	}
}

// The operator widens: bridge, capabilities and swap come only from the policy.
func TestResolveWithinAWiderPolicy(t *testing.T) {
	p := DefaultPolicy()
	p.NetworkModes = []string{"none", "bridge"}
	p.AllowCaps = []string{"NET_BIND_SERVICE", "CHOWN"}
	p.MaxMemorySwap = 2 << 30
	res, err := p.Resolve(Request{NetworkMode: "bridge", CapAdd: []string{"net_bind_service", "CAP_CHOWN", "CHOWN"}, MemorySwap: "2g"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.NetworkMode != "bridge" || !reflect.DeepEqual(res.CapAdd, []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}) || res.MemorySwap != 2<<30 {
		t.Errorf("sent bridge, cap_add [net_bind_service CAP_CHOWN CHOWN], memory_swap 2g: got %+v", res)
	}
	_, err = p.Resolve(Request{CapAdd: []string{"SYS_ADMIN"}}, true)
	if e, ok := err.(*fault.Error); !ok || e.Kind != fault.KindForbidden || !strings.Contains(e.Message, "--allow-caps NET_BIND_SERVICE,CHOWN") {
		t.Errorf("sent cap_add [SYS_ADMIN] with --allow-caps NET_BIND_SERVICE,CHOWN: got %v", err)
	}
	_, err = p.Resolve(Request{MemorySwap: "3g"}, true)
	if e, ok := err.(*fault.Error); !ok || e.Kind != fault.KindForbidden || !strings.Contains(e.Message, "--max-memory-swap") {
		t.Errorf("sent memory_swap 3g above --max-memory-swap 2g: got %v", err)
	}
}

func TestResolveBuild(t *testing.T) {
	res, err := DefaultPolicy().ResolveBuild(BuildRequest{})
	want := Resources{Memory: 512 << 20, MemorySwap: 512 << 20, CPUQuota: 100000, CPUs: 1, Timeout: 10 * time.Minute, Pids: 256, NetworkMode: "none"}
	if err != nil || !reflect.DeepEqual(res, want) {
		t.Errorf("build defaults: got %+v, %v; want %+v", res, err, want)
	}
	low := Policy{MaxMemory: 64 << 20, MaxCPUs: 0.5, MaxPids: 32, MaxBuildTimeout: time.Minute, NetworkModes: []string{"none"}}
	res, err = low.ResolveBuild(BuildRequest{})
	if err != nil || res.Memory != 64<<20 || res.CPUs != 0.5 || res.Pids != 32 || res.Timeout != time.Minute {
		t.Errorf("build defaults under low ceilings: got %+v, %v", res, err)
	}
	for _, tt := range []struct {
		req   BuildRequest
		kind  fault.Kind
		field string
		flag  string
	}{
		{BuildRequest{Timeout: "3600"}, fault.KindForbidden, "timeout", "--max-build-timeout"},
		{BuildRequest{Timeout: "1e10"}, fault.KindForbidden, "timeout", "--max-build-timeout"},
		{BuildRequest{Timeout: "0"}, fault.KindInvalidParams, "timeout", ""},
		{BuildRequest{Memory: "4g"}, fault.KindForbidden, "memory", "--max-memory"},
		{BuildRequest{NetworkMode: "bridge"}, fault.KindForbidden, "network_mode", "--network-modes"},
		{BuildRequest{NetworkMode: "slirp4netns"}, fault.KindInvalidParams, "network_mode", ""},
		{BuildRequest{Pids: "5000"}, fault.KindForbidden, "pids_limit", "--max-pids"},
	} {
		_, err := DefaultPolicy().ResolveBuild(tt.req)
		e, ok := err.(*fault.Error)
		if !ok || e.Kind != tt.kind || e.Fields["field"] != tt.field || !strings.Contains(e.Message, tt.flag) {
			t.Errorf("sent %+v: got %v; want %s naming %q and %q", tt.req, err, tt.kind, tt.field, tt.flag)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1g", 20 << 20: "20m", 512 << 10: "512k", 1000: "1000"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Defaults never exceed a ceiling an operator set lower.
func TestDefaultsRespectLowerCeilings(t *testing.T) {
	p := Policy{MaxMemory: 10 << 20, MaxCPUs: 0.25, MaxTimeout: 2 * time.Second, MaxPids: 16, NetworkModes: []string{"none"}}
	res, err := p.Resolve(Request{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Memory != 10<<20 || res.MemorySwap != 10<<20 || res.CPUs != 0.25 || res.Timeout != 2*time.Second || res.Pids != 16 {
		t.Errorf("defaults under low ceilings: %+v", res)
	}
}

// Regression: the message named the memory the caller sent, empty when defaulted.
func TestSwapBelowDefaultMemoryNamesIt(t *testing.T) {
	_, err := DefaultPolicy().Resolve(Request{MemorySwap: "10m"}, true)
	if err == nil || !strings.Contains(err.Error(), "below memory (20m)") {
		t.Errorf("got %v", err)
	}
}
