package limits

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/podman-worker/podman-worker/fault"
)

// IgnoreFiles are the files that say what of a build context is left out;
// the bindings read them on the worker's host (and re-include them in the
// upload whatever they say).
var IgnoreFiles = []string{".containerignore", ".dockerignore"}

// CheckBuildContext refuses a build context whose upload would carry more
// than the context: an ignore file that is a symlink (read on the host,
// wherever it points), a file with more than one link (a hard link to a
// file outside the context sends that file's bytes), or a socket, device
// or fifo. containerfile is the Containerfile's path, whose own ignore
// files (<file>.containerignore) are checked too. Its size is bound
// elsewhere, on the upload itself (podman.LimitUpload), where it cannot
// disagree with what is sent.
func CheckBuildContext(dir, containerfile string) error {
	for _, name := range IgnoreFiles {
		for _, path := range []string{filepath.Join(dir, name), containerfile + name} {
			if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
				return contextError("%s is a symlink; an ignore file must be a plain file in the context", path)
			}
		}
	}
	errStop := errors.New("stop")
	var refused error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // the upload meets the same error and fails the build
		}
		t := d.Type()
		switch {
		case t.IsDir(), t&fs.ModeSymlink != 0:
			// A symlink is sent as a link, never as what it points to.
			return nil
		case !t.IsRegular():
			refused = contextError("%s is a %s; a build context holds files, folders and symlinks only", path, kindOf(t))
			return errStop
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			refused = contextError("%s has %d hard links; a file with more than one link may be a file from outside the context, so the context may hold none (copy it instead)", path, st.Nlink)
			return errStop
		}
		return nil
	})
	if refused != nil {
		return refused
	}
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return nil
}

func contextError(format string, args ...any) error {
	return fault.Forbidden("context", format, args...)
}
