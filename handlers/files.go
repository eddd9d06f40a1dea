package handlers

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

type addFileParams struct {
	Name     string `json:"name" rpc:"required"`
	DestPath string `json:"dest_path" rpc:"required"`
	// Content is a pointer because "" is a valid (empty) file, and
	// `rpc:"required"` would refuse it.
	Content  *string `json:"content"`
	Encoding string  `json:"encoding"`
	Mode     string  `json:"mode"`
}

type addFileResult struct {
	DestPath string `json:"dest_path"`
	Size     int    `json:"size"`
}

var octalPattern = regexp.MustCompile(`^[0-7]+$`)

// addFile writes a file into a container through Podman's archive upload:
// byte-exact, binary-safe, and no shell or command line ever sees the content.
func (s *Service) addFile(ctx context.Context, p addFileParams) (any, error) {
	if strings.HasSuffix(p.DestPath, "/") {
		// Cleaning would drop the slash and write a file where the caller
		// named a directory.
		return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"dest_path\" %q ends in \"/\", which names a directory: give the file's path, such as %sname", p.DestPath, p.DestPath).With("field", "dest_path")
	}
	dest, err := containerPath(p.DestPath, "dest_path")
	if err != nil {
		return nil, err
	}
	if p.Content == nil {
		return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: missing required field \"content\"").With("field", "content")
	}
	var data []byte
	switch strings.ToLower(p.Encoding) {
	case "", "utf-8", "utf8":
		data = []byte(*p.Content)
	case "base64":
		if data, err = base64.StdEncoding.DecodeString(*p.Content); err != nil {
			return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"content\" is not valid base64: %v", err).With("field", "content")
		}
	default:
		return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"encoding\" must be \"utf-8\" or \"base64\", got %q", p.Encoding).With("field", "encoding")
	}
	mode := int64(0o644)
	if p.Mode != "" {
		m, err := strconv.ParseInt(p.Mode, 8, 64)
		if !octalPattern.MatchString(p.Mode) || err != nil || m > 0o7777 {
			return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"mode\" must be octal digits up to 7777, e.g. \"0644\", got %q", p.Mode).With("field", "mode")
		}
		if m&0o7000 != 0 && !s.policy.AllowSpecialModes {
			// A set-uid root file is a way up for any user in the
			// container (no new privileges stops it only for processes
			// that have it set); sticky is refused with them for one rule.
			return nil, rpc.Errorf(rpc.KindForbidden, "Forbidden: \"mode\": %q has set-uid, set-gid or sticky bits, which this worker does not write (--allow-special-modes); use permission bits up to 0777", p.Mode).With("field", "mode")
		}
		mode = m
	}

	// Podman 4.3.1 silently creates missing directories on upload; a caller
	// naming a directory that is not there has most likely made a mistake,
	// so the parent is checked first. Overwriting a directory with a file is
	// refused for the same reason.
	id, err := s.podman(ctx).Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(dest)
	dir = path.Clean(dir)
	switch isDir, err := s.podman(ctx).Stat(ctx, id, dir); {
	case errors.Is(err, podman.ErrNoFile):
		return nil, rpc.Errorf(rpc.KindNotFound, "directory %s does not exist in container %q", dir, p.Name).With("path", dir)
	case err != nil:
		return nil, err
	case !isDir:
		return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %s is not a directory in container %q", dir, p.Name).With("field", "dest_path")
	}
	if isDir, err := s.podman(ctx).Stat(ctx, id, dest); err == nil && isDir {
		return nil, rpc.Errorf(rpc.KindConflict, "%s is a directory in container %q", dest, p.Name).With("field", "dest_path")
	}
	err = s.podman(ctx).PutArchive(ctx, id, dir, []podman.ArchiveEntry{{Header: &tar.Header{
		Typeflag: tar.TypeReg, Name: base, Mode: mode, ModTime: time.Now(),
	}, Data: data}})
	if err != nil {
		return nil, err
	}
	return addFileResult{DestPath: dest, Size: len(data)}, nil
}

// containerPath validates an absolute path inside a container and cleans it.
func containerPath(p, field string) (string, error) {
	switch {
	case strings.ContainsRune(p, 0):
		return "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q contains a NUL byte", field).With("field", field)
	case !strings.HasPrefix(p, "/"):
		return "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q must be an absolute path, got %q", field, p).With("field", field)
	}
	clean := path.Clean(p)
	if clean == "/" {
		return "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q must name a file, not /", field).With("field", field)
	}
	return clean, nil
}
