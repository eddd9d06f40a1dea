package containerfile

import (
	"os"
	"path/filepath"
	"strings"
)

// insideContext says why source is not a path buildah would resolve
// inside dir, or "" when it is. buildah 1.28 (internal/parse
// GetBindMount) joins the cleaned source to the context and the mount then
// follows symlinks in it, which is how `ln -s / hostroot` in a context
// bound the host's root. So every component must exist and none may be a
// symlink; the last one may be a directory or a regular file, nothing
// else (no device, socket or pipe). Absolute sources and ".." are refused
// although buildah would keep them inside the context: a caller who means
// the context can say so plainly.
func insideContext(dir, source string) string {
	if dir == "" || !filepath.IsAbs(dir) {
		return "the worker has no build context to bind from"
	}
	if filepath.IsAbs(source) {
		return "the source must be a path relative to the build context"
	}
	clean := filepath.Clean(source)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "the source leaves the build context"
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return "the build context is not a directory"
	}
	if clean == "." {
		return ""
	}
	p := dir
	parts := strings.Split(clean, "/")
	for i, part := range parts {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			return "it does not exist in the build context"
		case fi.Mode()&os.ModeSymlink != 0:
			return filepath.Join(parts[:i+1]...) + " is a symlink in the build context; bind the directory it points to, inside the context"
		case i < len(parts)-1 && !fi.IsDir(), i == len(parts)-1 && !fi.IsDir() && !fi.Mode().IsRegular():
			return filepath.Join(parts[:i+1]...) + " is not a directory or a regular file"
		}
	}
	return ""
}
