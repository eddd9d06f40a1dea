package podman

import "testing"

func TestSocketPath(t *testing.T) {
	for _, c := range []struct {
		uri  string
		want string
		ok   bool
	}{
		{"/run/podman/podman.sock", "/run/podman/podman.sock", true},
		{"unix:///run/podman/podman.sock", "/run/podman/podman.sock", true},
		{"unix://run/podman/podman.sock", "/run/podman/podman.sock", true}, // Podman's host/path form
		{"unix:///run/podman/../podman/podman.sock", "/run/podman/podman.sock", true},
		{"//run/x", "/run/x", true},
		{"unix://", "", false},
		{"ssh://core@host/run/podman/podman.sock", "", false},
		{"tcp://127.0.0.1:8080", "", false},
		{"podman.sock", "", false}, // the config makes relative paths absolute first
		{"unix://%zz", "", false},
	} {
		got, ok := SocketPath(c.uri)
		if got != c.want || ok != c.ok {
			t.Errorf("SocketPath(%q) = %q, %v; want %q, %v", c.uri, got, ok, c.want, c.ok)
		}
	}
}
