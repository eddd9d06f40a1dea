package podman

import "testing"

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/pw-1/root/overlay`: "/tmp/pw-1/root/overlay",
		`/tmp/a\040b`:            "/tmp/a b",
		`/tmp/a\134b\011c`:       "/tmp/a\\b\tc",
		`/tmp/trailing\04`:       `/tmp/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
