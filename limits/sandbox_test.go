package limits

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

func TestParseCaps(t *testing.T) {
	got, err := ParseCaps(" net_bind_service, CAP_CHOWN,CHOWN,")
	if err != nil || !reflect.DeepEqual(got, []string{"NET_BIND_SERVICE", "CHOWN"}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"ALL", "WIZARDRY", "CAP_"} {
		if _, err := ParseCaps(bad); err == nil {
			t.Errorf("--allow-caps %q was accepted", bad)
		}
	}
}

func TestPortBinding(t *testing.T) {
	wide := DefaultPolicy()
	wide.PortAddresses = []string{"0.0.0.0", "10.0.0.5"}
	wide.AllowPrivilegedPorts = true
	tests := []struct {
		name   string
		p      Policy
		ip     string
		port   uint16
		want   string
		kind   fault.Kind // -1: no error
		naming string     // a word the message must hold
	}{
		{"no address: loopback", DefaultPolicy(), "", 8080, "127.0.0.1", -1, ""},
		{"no policy list: loopback", Policy{}, "", 8080, "127.0.0.1", -1, ""},
		{"loopback named", DefaultPolicy(), "127.0.0.1", 8080, "127.0.0.1", -1, ""},
		{"any free port", DefaultPolicy(), "", 0, "127.0.0.1", -1, ""},
		{"every interface refused", DefaultPolicy(), "0.0.0.0", 8080, "", fault.KindForbidden, "--port-addresses"},
		{"another host address refused", DefaultPolicy(), "10.0.0.5", 8080, "", fault.KindForbidden, "--port-addresses"},
		{"privileged port refused", DefaultPolicy(), "", 80, "", fault.KindForbidden, "--allow-privileged-ports"},
		{"port 1023 refused", DefaultPolicy(), "", 1023, "", fault.KindForbidden, "--allow-privileged-ports"},
		{"port 1024 taken", DefaultPolicy(), "", 1024, "127.0.0.1", -1, ""},
		{"not an address", DefaultPolicy(), "localhost", 8080, "", fault.KindInvalidParams, "not an IP"},
		{"operator's first address is the default", wide, "", 8080, "0.0.0.0", -1, ""},
		{"operator's second address", wide, "10.0.0.5", 80, "10.0.0.5", -1, ""},
	}
	for _, tt := range tests {
		got, err := tt.p.PortBinding("spec", tt.ip, tt.port)
		if tt.kind == -1 {
			if err != nil || got != tt.want {
				t.Errorf("%s: sent %q:%d, got %q, %v; want %q", tt.name, tt.ip, tt.port, got, err, tt.want)
			}
			continue
		}
		e, ok := err.(*fault.Error)
		if !ok || e.Kind != tt.kind || e.Fields["field"] != "ports" || !strings.Contains(e.Message, tt.naming) {
			t.Errorf("%s: sent %q:%d, got %q, %v; want %s naming %q", tt.name, tt.ip, tt.port, got, err, tt.kind, tt.naming)
		}
	}
}

// hostTree makes, under a temp dir: allowed/data (a directory), allowed/out
// (a symlink to outside), allowed/in (a symlink to allowed/data),
// allowed/sock (a directory holding the "socket" the policy never mounts),
// and outside/secret.
func hostTree(t *testing.T) (root string, p Policy) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"allowed/data", "allowed/sock", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "outside/secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "outside"), filepath.Join(root, "allowed/out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data", filepath.Join(root, "allowed/in")); err != nil {
		t.Fatal(err)
	}
	p = DefaultPolicy()
	p.MountRoots = []string{filepath.Join(root, "allowed")}
	p.BuildRoots = []string{filepath.Join(root, "allowed")}
	p.NeverMount = NeverMountPaths(append(p.NeverMount, filepath.Join(root, "allowed/sock/podman.sock"))...)
	return root, p
}

func TestBindSource(t *testing.T) {
	root, p := hostTree(t)
	allowed := filepath.Join(root, "allowed")
	tests := []struct {
		src    string
		want   string     // the resolved source, when accepted
		kind   fault.Kind // -1: accepted
		naming string
	}{
		{allowed + "/data", allowed + "/data", -1, ""},
		{allowed + "/data/", allowed + "/data", -1, ""},
		{allowed + "/in", allowed + "/data", -1, ""},
		{allowed, "", fault.KindForbidden, "never exposes"},                  // holds the socket
		{allowed + "/sock", "", fault.KindForbidden, "never exposes"},        // holds the socket
		{allowed + "/out", "", fault.KindForbidden, "resolves to"},           // a symlink out of the root
		{allowed + "/out/secret", "", fault.KindForbidden, "resolves to"},    // through the symlink
		{allowed + "/data/../../outside", "", fault.KindForbidden, `".."`},   // refused before cleaning
		{allowed + "/data/..", "", fault.KindForbidden, `".."`},              // even when it stays inside
		{root + "/outside/secret", "", fault.KindForbidden, "--mount-roots"}, // not under a root
		{"/etc/shadow", "", fault.KindForbidden, "--mount-roots"},
		{"/", "", fault.KindForbidden, "--mount-roots"},
		{"/proc", "", fault.KindForbidden, "--mount-roots"},
		{allowed + "/missing", "", fault.KindInvalidParams, "does not exist"},
		{root + "/outside/missing", "", fault.KindForbidden, "--mount-roots"}, // no existence oracle outside the roots
	}
	for _, tt := range tests {
		got, err := p.BindSource("volumes", tt.src)
		if tt.kind == -1 {
			if err != nil || got != tt.want {
				t.Errorf("sent %q: got %q, %v; want %q", tt.src, got, err, tt.want)
			}
			continue
		}
		e, ok := err.(*fault.Error)
		if !ok || e.Kind != tt.kind || e.Fields["field"] != "volumes" || !strings.Contains(e.Message, tt.naming) {
			t.Errorf("sent %q: got %q, %v; want %s naming %q", tt.src, got, err, tt.kind, tt.naming)
		}
	}

	// Nothing is mountable by default, and "/" or /proc are not even with "/" as a root.
	if _, err := DefaultPolicy().BindSource("mounts", allowed+"/data"); err == nil || !strings.Contains(err.Error(), "--mount-roots is empty") {
		t.Errorf("default policy, sent %q: got %v", allowed+"/data", err)
	}
	all := DefaultPolicy()
	all.MountRoots = []string{"/"}
	for _, src := range []string{"/", "/proc", "/proc/sys/vm", "/sys", "/dev", "/run", "/run/podman/podman.sock"} {
		if _, err := all.BindSource("mounts", src); err == nil {
			t.Errorf("--mount-roots /, sent %q: accepted", src)
		}
	}
	if got, err := all.BindSource("mounts", allowed+"/data"); err != nil || got != allowed+"/data" {
		t.Errorf("--mount-roots /, sent %q: got %q, %v", allowed+"/data", got, err)
	}
}

func TestBuildPath(t *testing.T) {
	root, p := hostTree(t)
	allowed := filepath.Join(root, "allowed")
	if got, err := p.BuildPath("context", "data"); err != nil || got != allowed+"/data" {
		t.Errorf("a relative context is relative to the first build root: got %q, %v", got, err)
	}
	if _, err := p.BuildPath("context", "../outside"); err == nil || !strings.Contains(err.Error(), `".."`) {
		t.Errorf(`a relative context with "..": got %v`, err)
	}
	if _, err := p.BuildPath("file", root+"/outside/secret"); err == nil || !strings.Contains(err.Error(), "--build-roots") {
		t.Errorf("a Containerfile outside the build roots: got %v", err)
	}
	if _, err := DefaultPolicy().BuildPath("context", allowed); err == nil || !strings.Contains(err.Error(), "--build-roots is empty") {
		t.Errorf("builds without build roots: got %v", err)
	}
}

func TestParseRoots(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	got, err := ParseRoots(link + ", " + dir)
	if err != nil || !reflect.DeepEqual(got, []string{dir, dir}) {
		t.Errorf("got %v, %v; want the symlink resolved", got, err)
	}
	for _, bad := range []string{"relative/dir", dir + "/missing", "/etc/hostname"} {
		if _, err := ParseRoots(bad); err == nil {
			t.Errorf("%q was accepted as a root", bad)
		}
	}
}

// Under a mount root: a unix socket that is not Podman's, a device, a
// named pipe and a hard link to a 0600 file outside the roots were
// mountable. Each is refused, naming what it is; a single-link file and
// a folder still mount.
func TestBindSourceRefusesSocketsDevicesAndHardLinks(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "allowed")
	if err := os.MkdirAll(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(root, "secret")
	if err := os.WriteFile(secret, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, filepath.Join(allowed, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "plain"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(allowed, "other.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := syscall.Mkfifo(filepath.Join(allowed, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy()
	p.MountRoots = []string{allowed}
	for src, naming := range map[string]string{
		"other.sock": "is a socket",
		"fifo":       "is a named pipe",
		"link":       "has 2 hard links",
	} {
		_, err := p.BindSource("mounts", filepath.Join(allowed, src))
		e, ok := err.(*fault.Error)
		if !ok || e.Kind != fault.KindForbidden || e.Fields["field"] != "mounts" || !strings.Contains(e.Message, naming) {
			t.Errorf("sent %s: got %v; want Forbidden naming %q", src, err, naming)
		}
	}
	dev := DefaultPolicy()
	dev.MountRoots = []string{"/"}
	dev.NeverMount = nil
	if _, err := dev.BindSource("mounts", "/dev/null"); err == nil || !strings.Contains(err.Error(), "character device") {
		t.Errorf("sent /dev/null with --mount-roots / and nothing else refused: %v; want a refusal naming a character device", err)
	}
	for _, src := range []string{"plain", ""} {
		if _, err := p.BindSource("mounts", filepath.Join(allowed, src)); err != nil {
			t.Errorf("sent %q: %v; want it mounted", filepath.Join(allowed, src), err)
		}
	}
}
