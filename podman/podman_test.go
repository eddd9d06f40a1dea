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
