package podman

import (
	"net/http"
	"testing"
)

func TestVersionFromHeaders(t *testing.T) {
	tests := []struct {
		server, api string
		want        string // "" means an error
	}{
		{"Libpod/4.3.1 (linux)", "4.3.1", "4.3.1"},
		{"Libpod/5.4.2 (linux)", "5.4.2", "5.4.2"},
		{"", "4.3.1", "4.3.1"},
		{"nginx", "", ""},
		{"Libpod/ (linux)", "", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set("Server", tt.server)
		h.Set("Libpod-Api-Version", tt.api)
		got, err := VersionFromHeaders(h)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("Server %q, Libpod-Api-Version %q: got %q, %v; want %q", tt.server, tt.api, got, err, tt.want)
		}
	}
}

func TestCappedKeepsWholeCharacters(t *testing.T) {
	c := NewCapped(5)
	c.Write([]byte("abcd"))
	c.Write([]byte("é and more")) // é is 2 bytes: only 1 byte of room left
	c.Write([]byte("x"))
	if got := c.String(); got != "abcd" || !c.Cut() {
		t.Errorf("got %q (cut %v), want \"abcd\" and cut", got, c.Cut())
	}
	if got := string(c.Bytes()); got != "abcd\xc3" {
		t.Errorf("Bytes() = %q, want every byte kept", got)
	}
	c = NewCapped(6)
	c.Write([]byte("abcdé!"))
	if got := c.String(); got != "abcdé" {
		t.Errorf("got %q, want the whole é kept", got)
	}
}

// Podman's own error line is taken out of a run's stderr only when it is
// the stream's last write, whole: what a function prints stays its own.
func TestOutputLostTakesPodmanLineOnlyWhenLast(t *testing.T) {
	const fault = "Error: read unixpacket @->/proc/self/fd/13/attach: read: connection reset by peer\n"
	for _, tc := range []struct {
		name       string
		writes     []string
		max        int
		lost       bool
		wantStderr string
	}{
		{"fault last", []string{"partial\n", fault}, 1 << 10, true, "partial\n"},
		{"fault alone", []string{fault}, 1 << 10, true, ""},
		{"fault then more output", []string{fault, "more\n"}, 1 << 10, false, fault + "more\n"},
		{"fault inside a longer write", []string{"x" + fault}, 1 << 10, false, "x" + fault},
		{"another Error line", []string{"Error: read tcp 1.2.3.4: reset\n"}, 1 << 10, false, "Error: read tcp 1.2.3.4: reset\n"},
		{"fault past the cap", []string{"0123456789", fault}, 12, false, "0123456789" + fault[:2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := NewOutput(tc.max)
			for _, w := range tc.writes {
				_, _ = out.Stderr.Write([]byte(w))
			}
			cause, lost := out.Lost()
			if lost != tc.lost || out.Stderr.String() != tc.wantStderr {
				t.Fatalf("wrote %q: Lost() = %q, %v and stderr %q; want lost %v, stderr %q", tc.writes, cause, lost, out.Stderr.String(), tc.lost, tc.wantStderr)
			}
			if lost && cause != "read unixpacket @->/proc/self/fd/13/attach: read: connection reset by peer" {
				t.Fatalf("cause %q", cause)
			}
		})
	}
}
