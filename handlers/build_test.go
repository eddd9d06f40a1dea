package handlers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podman-worker/podman-worker/rpc"
)

// The context size is counted before anything is sent, the way the upload
// counts it: regular files only, less what .containerignore or
// .dockerignore leaves out (and their ! exceptions), symlinks as links.
func TestCheckContextSize(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", 100)
	write("big/blob", 4096)
	write("big/keep", 10)
	os.Symlink("/dev/zero", filepath.Join(dir, "zero")) // never read through
	if err := checkContextSize(dir, 5000); err != nil {
		t.Errorf("4206 bytes under a 5000 cap: %v", err)
	}
	err := checkContextSize(dir, 4000)
	if e, ok := err.(*rpc.Error); !ok || e.Kind != rpc.KindForbidden || e.Fields["field"] != "context" || !strings.Contains(e.Message, "--max-build-context") {
		t.Errorf("4206 bytes over a 4000 cap: got %v; want Forbidden naming context and the flag", err)
	}
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# comment\nbig\n!big/keep\n"), 0o644)
	if err := checkContextSize(dir, 200); err != nil {
		t.Errorf("with big/ in .dockerignore (big/keep kept): %v", err)
	}
	// .containerignore wins over .dockerignore, as in the upload.
	os.WriteFile(filepath.Join(dir, ".containerignore"), []byte("Dockerfile\n"), 0o644)
	if err := checkContextSize(dir, 200); err == nil {
		t.Error(".containerignore that does not leave big/ out: the 4096-byte blob was not counted")
	}
}
