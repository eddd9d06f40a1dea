package podman

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	podmancopy "github.com/containers/podman/v5/pkg/copy"
	"github.com/podman-worker/podman-worker/fault"
)

// ArchiveEntry is one member of an upload: a header (ownership defaults to
// root) and, for regular files, the content.
type ArchiveEntry struct {
	Header *tar.Header
	Data   []byte
}

// PutArchive uploads entries into dir of the container in one request, so
// related files (passwd, group, shadow) change together, byte-exact and
// without any shell or command line seeing the content.
func (c *Client) PutArchive(ctx context.Context, name, dir string, entries []ArchiveEntry) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.Header.Typeflag == tar.TypeReg {
			e.Header.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(e.Header); err != nil {
			return err
		}
		if _, err := tw.Write(e.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	conn, err := bindings.GetClient(ctx)
	if err != nil {
		return err
	}
	// Chown false keeps the owners written in the archive: Podman's libpod
	// endpoint otherwise gives every file to the container's user (root
	// here), which would leave a new home directory unusable by its owner.
	// noOverwriteDirNonDir: a file never replaces a directory or vice versa.
	// The request is made here rather than through the bindings' copy
	// function, which reduces a refusal to its HTTP status line and loses
	// Podman's error (and so which of container or directory was missing).
	params := url.Values{}
	params.Set("path", dir)
	params.Set("copyUIDGID", "false")
	params.Set("noOverwriteDirNonDir", "true")
	resp, err := conn.DoRequest(ctx, &buf, http.MethodPut, "/containers/%s/archive", params, nil, name)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := resp.Process(nil); err != nil {
		if c.KindOf(err) == fault.KindNotFound {
			if merr := c.RequireContainer(ctx, name); merr != nil {
				return merr
			}
			return fault.Wrap(fault.KindNotFound, err, "uploading into %s of container %q: %v", dir, name, err)
		}
		return fault.Wrap(fault.KindPodman, err, "uploading into %s of container %q: %v", dir, name, err)
	}
	return nil
}

// ErrNoFile means the container exists but the file does not.
var ErrNoFile = errors.New("no such file")

// ReadFile reads one regular file of at most max bytes from a container
// through the archive download. It answers ErrNoFile when the file does
// not exist and NotFound when the container does not.
func (c *Client) ReadFile(ctx context.Context, name, file string, max int) (*tar.Header, []byte, error) {
	// The tar framing needs a little room on top of the content; the cap
	// keeps memory bounded whatever the container holds.
	buf := NewCapped(max + 64<<10)
	copyFn, err := containers.CopyToArchive(ctx, name, file, buf)
	if err != nil {
		if c.KindOf(err) == fault.KindNotFound {
			if merr := c.RequireContainer(ctx, name); merr != nil {
				return nil, nil, merr
			}
			return nil, nil, ErrNoFile
		}
		return nil, nil, err
	}
	if err := copyFn(); err != nil {
		return nil, nil, err
	}
	if buf.Cut() {
		return nil, nil, fault.Errorf(fault.KindConflict, "%s in container %q is larger than %d bytes", file, name, max)
	}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s of container %q: %w", file, name, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, nil, fault.Errorf(fault.KindConflict, "%s in container %q is not a regular file", file, name)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, nil, err
	}
	return hdr, data, nil
}

// Stat describes a path in a container; ErrNoFile when it does not exist
// (NotFound when the container does not).
func (c *Client) Stat(ctx context.Context, name, path string) (isDir bool, err error) {
	st, err := containers.Stat(ctx, name, path)
	switch {
	case errors.Is(err, podmancopy.ErrENOENT):
		if err := c.RequireContainer(ctx, name); err != nil {
			return false, err
		}
		return false, ErrNoFile
	case err != nil:
		return false, err
	}
	return st != nil && st.IsDir, nil
}

// RequireContainer answers NotFound when the container does not exist.
// Podman's archive endpoints answer 404 for a missing container and for a
// missing path alike; this tells the two apart.
func (c *Client) RequireContainer(ctx context.Context, name string) error {
	ok, err := containers.Exists(ctx, name, nil)
	if err != nil {
		return err
	}
	if !ok {
		return fault.Errorf(fault.KindNotFound, "no such container: %s", name).With("container", name)
	}
	return nil
}

// ReadOnlyRoot says whether a container's root filesystem is mounted
// read-only, in which case an upload can only write into its tmpfs and
// volume mounts.
func (c *Client) ReadOnlyRoot(ctx context.Context, name string) (bool, error) {
	data, err := containers.Inspect(ctx, name, nil)
	if err != nil {
		return false, err
	}
	return data.HostConfig != nil && data.HostConfig.ReadonlyRootfs, nil
}

// Writable says where a container can be written: its whole root, or
// only the places listed (its tmpfs mounts and read-write volumes and
// binds), as Podman set them up.
type Writable struct {
	Root   bool
	Places []string
}

// Covers says whether path lies in a writable place (or the root is).
func (w Writable) Covers(path string) bool {
	if w.Root {
		return true
	}
	for _, p := range w.Places {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// PlaceOf is the writable place path lies in, the deepest one; "" when
// none does (or the root is writable).
func (w Writable) PlaceOf(path string) string {
	best := ""
	for _, p := range w.Places {
		if (path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/")) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// WritablePlaces reads where a container can be written.
func (c *Client) WritablePlaces(ctx context.Context, name string) (Writable, error) {
	data, err := containers.Inspect(ctx, name, nil)
	if err != nil {
		return Writable{}, err
	}
	var w Writable
	if data.HostConfig != nil {
		w.Root = !data.HostConfig.ReadonlyRootfs
		for dest, opts := range data.HostConfig.Tmpfs {
			if !slices.Contains(strings.Split(opts, ","), "ro") {
				w.Places = append(w.Places, dest)
			}
		}
	}
	for _, m := range data.Mounts {
		if m.RW && !slices.Contains(w.Places, m.Destination) {
			w.Places = append(w.Places, m.Destination)
		}
	}
	slices.Sort(w.Places)
	return w, nil
}
