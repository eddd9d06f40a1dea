package handlers

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
)

// The spec run and create send to Podman, checked without Podman: what
// the defaults close and what the operator's flags open. The same
// settings are checked from inside real containers in
// cmd/podman-worker/sandbox_test.go.

func specWith(t *testing.T, p limits.Policy, c containerConfig) (*specgen.SpecGenerator, error) {
	t.Helper()
	s := New(nil, zerolog.Nop(), Options{Policy: p})
	if c.Image == "" {
		c.Image = "localhost/busybox:latest"
	}
	res, err := p.Resolve(limits.Request{}, !c.LongLived)
	if err != nil {
		t.Fatal(err)
	}
	if c.Resources.Memory == 0 {
		c.Resources = res
	}
	return s.specFor(context.Background(), c)
}

func mountAt(g *specgen.SpecGenerator, dest string) (string, []string, bool) {
	for _, m := range g.Mounts {
		if m.Destination == dest {
			return m.Type, m.Options, true
		}
	}
	return "", nil, false
}

func TestSpecDefaultsAreClosed(t *testing.T) {
	g, err := specWith(t, limits.DefaultPolicy(), containerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.CapDrop, []string{"ALL"}) || len(g.CapAdd) != 0 {
		t.Errorf("capabilities: drop %v add %v; want all dropped", g.CapDrop, g.CapAdd)
	}
	if g.ReadOnlyFilesystem == nil || !*g.ReadOnlyFilesystem {
		t.Error("the root filesystem is writable")
	}
	if g.NoNewPrivileges == nil || !*g.NoNewPrivileges || g.Privileged == nil || *g.Privileged {
		t.Error("no-new-privileges off or privileged on")
	}
	if g.LogConfiguration.Driver != "none" {
		t.Errorf("run's log driver %q: its output would reach a file on the host", g.LogConfiguration.Driver)
	}
	if g.UserNS.NSMode != "" || g.IDMappings != nil {
		t.Errorf("a user namespace without the operator asking: %+v", g.UserNS)
	}
	for _, d := range []string{"/tmp", "/var/tmp", "/run"} {
		typ, opts, ok := mountAt(g, d)
		if !ok || typ != "tmpfs" || !slices.Contains(opts, "size=20971520") || !slices.Contains(opts, "nosuid") {
			t.Errorf("%s: %s %v; want a tmpfs of the memory limit (20m)", d, typ, opts)
		}
	}
	if g.ShmSize == nil || *g.ShmSize != 20<<20 {
		t.Errorf("/dev/shm size %v, want the memory limit", g.ShmSize)
	}

	g, err = specWith(t, limits.DefaultPolicy(), containerConfig{LongLived: true})
	if err != nil {
		t.Fatal(err)
	}
	if g.LogConfiguration.Driver != "k8s-file" || g.LogConfiguration.Size != 10<<20 {
		t.Errorf("create's log: %+v; want k8s-file capped at 10m", g.LogConfiguration)
	}
}

func TestSpecWidenedByTheOperator(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	p := limits.DefaultPolicy()
	p.WritableRoot = true
	p.UserNS = "auto"
	p.AllowCaps = []string{"NET_BIND_SERVICE"}
	p.MountRoots = []string{dir}
	p.NetworkModes = []string{"none", "bridge"}
	p.MaxLogBytes = 1 << 20
	res, err := p.Resolve(limits.Request{NetworkMode: "bridge", CapAdd: []string{"NET_BIND_SERVICE"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	g, err := specWith(t, p, containerConfig{LongLived: true, Resources: res, Volumes: []string{dir + ":/data"}, Ports: []string{"8080:80"},
		Mounts: []string{"tmpfs:/tmp:size=1m"}})
	if err != nil {
		t.Fatal(err)
	}
	if g.ReadOnlyFilesystem != nil && *g.ReadOnlyFilesystem {
		t.Error("--writable-root: still read-only")
	}
	if g.UserNS.NSMode != specgen.Auto || g.IDMappings == nil || !g.IDMappings.AutoUserNs {
		t.Errorf("--userns auto: %+v %+v", g.UserNS, g.IDMappings)
	}
	if !slices.Equal(g.CapAdd, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("cap_add within --allow-caps: %v", g.CapAdd)
	}
	if typ, _, ok := mountAt(g, "/data"); !ok || typ != "bind" {
		t.Errorf("a bind mount under --mount-roots: %v %v", typ, ok)
	}
	if _, opts, _ := mountAt(g, "/tmp"); !slices.Contains(opts, "size=1048576") {
		t.Errorf("the caller's tmpfs at /tmp replaces the default one: %v", opts)
	}
	if n := len(g.Mounts); n != 4 { // /data, the caller's /tmp, /var/tmp, /run
		t.Errorf("%d mounts: %+v", n, g.Mounts)
	}
	if len(g.PortMappings) != 1 || g.PortMappings[0].HostIP != "127.0.0.1" {
		t.Errorf("ports: %+v; want bound to 127.0.0.1", g.PortMappings)
	}
	if g.LogConfiguration.Size != 1<<20 {
		t.Errorf("--max-log-bytes 1m: %+v", g.LogConfiguration)
	}
}

func TestSpecRefusals(t *testing.T) {
	bridge := limits.DefaultPolicy()
	bridge.NetworkModes = []string{"none", "bridge"}
	res, _ := bridge.Resolve(limits.Request{NetworkMode: "bridge"}, true)
	tests := []struct {
		name   string
		c      containerConfig
		kind   fault.Kind
		field  string
		naming string
	}{
		{"host root", containerConfig{Volumes: []string{"/:/host"}}, fault.KindForbidden, "volumes", "--mount-roots"},
		{"podman socket", containerConfig{Volumes: []string{"/run/podman/podman.sock:/s"}}, fault.KindForbidden, "volumes", "--mount-roots"},
		{"proc", containerConfig{Mounts: []string{"/proc:/hp:rw"}}, fault.KindForbidden, "mounts", "--mount-roots"},
		{"sys", containerConfig{Mounts: []string{"/sys:/hsys:rw"}}, fault.KindForbidden, "mounts", "--mount-roots"},
		{"dot-dot", containerConfig{Volumes: []string{"/tmp/../etc:/e"}}, fault.KindForbidden, "volumes", ".."},
		{"tmpfs above memory", containerConfig{Mounts: []string{"tmpfs:/scratch:size=1g"}}, fault.KindForbidden, "mounts", "memory limit"},
		{"privileged port", containerConfig{Ports: []string{"80:8080"}, Resources: res}, fault.KindForbidden, "ports", "--allow-privileged-ports"},
		{"every interface", containerConfig{Ports: []string{"0.0.0.0:8080:80"}, Resources: res}, fault.KindForbidden, "ports", "--port-addresses"},
	}
	for _, tt := range tests {
		_, err := specWith(t, bridge, tt.c)
		e, ok := err.(*fault.Error)
		if !ok || e.Kind != tt.kind || e.Fields["field"] != tt.field || !strings.Contains(e.Message, tt.naming) {
			t.Errorf("%s: sent %+v, got %v; want %s naming %q and %q", tt.name, tt.c, err, tt.kind, tt.field, tt.naming)
		}
	}
}
