package limits

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

// A build context is sent as it lies on the host: each case puts one thing
// in an otherwise plain context and says whether the context is refused.
func TestCheckBuildContext(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:x:"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string // "" accepted; else words of the refusal
	}{
		{"plain files, folders and a symlink to /", func(t *testing.T, dir string) {
			os.Symlink("/", filepath.Join(dir, "hostroot")) // sent as a link, never followed
		}, ""},
		{"a .dockerignore that is a symlink out of the context", func(t *testing.T, dir string) {
			os.Symlink(secret, filepath.Join(dir, ".dockerignore"))
		}, ".dockerignore is a symlink"},
		{"a .containerignore that is a symlink", func(t *testing.T, dir string) {
			os.Symlink("Dockerfile", filepath.Join(dir, ".containerignore"))
		}, ".containerignore is a symlink"},
		{"a Containerfile's own ignore file that is a symlink", func(t *testing.T, dir string) {
			os.Symlink(secret, filepath.Join(dir, "Dockerfile.dockerignore"))
		}, "Dockerfile.dockerignore is a symlink"},
		{"a hard link to a 0600 file outside the context", func(t *testing.T, dir string) {
			if err := os.Link(secret, filepath.Join(dir, "hl")); err != nil {
				t.Skipf("hard link across folders: %v", err)
			}
		}, "hard links"},
		{"a fifo", func(t *testing.T, dir string) {
			syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
		}, "is a named pipe"},
		{"a unix socket", func(t *testing.T, dir string) {
			l, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, "is a socket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
			os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
			c.setup(t, dir)
			err := CheckBuildContext(dir, filepath.Join(dir, "Dockerfile"))
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := err.(*fault.Error)
			if !ok || e.Kind != fault.KindForbidden || e.Fields["field"] != "context" || !strings.Contains(e.Message, c.want) {
				t.Fatalf("got %v; want Forbidden on context saying %q", err, c.want)
			}
		})
	}
}
