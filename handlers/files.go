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

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
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
	// Note says, when it is there, that the file would not come back
	// after a stop and start (state.go).
	Note string `json:"note,omitempty"`
}

var octalPattern = regexp.MustCompile(`^[0-7]+$`)

// addFile writes a file into a container through Podman's archive upload:
// byte-exact, binary-safe, and no shell or command line ever sees the content.
func (s *Service) addFile(ctx context.Context, p addFileParams) (any, error) {
	if strings.HasSuffix(p.DestPath, "/") {
		// Cleaning would drop the slash and write a file where the caller
		// named a directory.
		return nil, fault.Param(fault.KindInvalidParams, "dest_path", "\"dest_path\" %q ends in \"/\", which names a directory: give the file's path, such as %sname", p.DestPath, p.DestPath)
	}
	dest, err := containerPath(p.DestPath, "dest_path")
	if err != nil {
		return nil, err
	}
	if p.Content == nil {
		return nil, fault.Param(fault.KindInvalidParams, "content", "missing required field \"content\"")
	}
	data, err := decodeBytes(*p.Content, p.Encoding, "content", "encoding")
	if err != nil {
		return nil, err
	}
	mode := int64(0o644)
	if p.Mode != "" {
		m, err := strconv.ParseInt(p.Mode, 8, 64)
		if !octalPattern.MatchString(p.Mode) || err != nil || m > 0o7777 {
			return nil, fault.Param(fault.KindInvalidParams, "mode", "\"mode\" must be octal digits up to 7777, e.g. \"0644\", got %q", p.Mode)
		}
		if m&0o7000 != 0 && !s.policy.AllowSpecialModes {
			// A set-uid root file is a way up for any user in the
			// container (no new privileges stops it only for processes
			// that have it set); sticky is refused with them for one rule.
			return nil, fault.Forbidden("mode", "%q has set-uid, set-gid or sticky bits, which this worker does not write (--allow-special-modes); use permission bits up to 0777", p.Mode)
		}
		mode = m
	}

	// The file goes where the container can be written (its in-memory
	// folders, or a writable root); missing folders on the way are made,
	// 0755, as the seed's upload did. A directory is not overwritten.
	client := s.podman(ctx)
	id, err := client.Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	writable, err := client.WritablePlaces(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := requireWritable(writable, dest, p.Name, "add_file writes"); err != nil {
		return nil, err
	}
	if isDir, err := client.Stat(ctx, id, dest); err == nil && isDir {
		return nil, fault.Errorf(fault.KindConflict, "%s is a directory in container %q", dest, p.Name).With("field", "dest_path")
	}
	dir, missing, err := s.existingParent(ctx, id, p.Name, dest)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var entries []podman.ArchiveEntry
	for i := range missing {
		entries = append(entries, podman.ArchiveEntry{Header: &tar.Header{
			Typeflag: tar.TypeDir, Name: path.Join(missing[:i+1]...) + "/", Mode: 0o755, ModTime: now,
		}})
	}
	entries = append(entries, podman.ArchiveEntry{Header: &tar.Header{
		Typeflag: tar.TypeReg, Name: path.Join(append(missing, path.Base(dest))...), Mode: mode, ModTime: now,
	}, Data: data})
	if err := client.PutArchive(ctx, id, dir, entries); err != nil {
		return nil, err
	}
	if !s.state.record(id, dir, entries) {
		return addFileResult{DestPath: dest, Size: len(data), Note: journalNote(false)}, nil
	}
	return addFileResult{DestPath: dest, Size: len(data)}, nil
}

// existingParent finds the deepest folder of dest's parents that exists
// in the container, and the names of the ones below it that do not.
func (s *Service) existingParent(ctx context.Context, id, name, dest string) (dir string, missing []string, err error) {
	for dir = path.Dir(dest); ; dir = path.Dir(dir) {
		isDir, err := s.podman(ctx).Stat(ctx, id, dir)
		switch {
		case errors.Is(err, podman.ErrNoFile):
			missing = append([]string{path.Base(dir)}, missing...)
			continue
		case err != nil:
			return "", nil, err
		case !isDir:
			return "", nil, fault.Param(fault.KindInvalidParams, "dest_path", "%s is not a directory in container %q", dir, name)
		}
		return dir, missing, nil
	}
}

// decodeBytes reads bytes a caller sent as text: "utf-8" (the default,
// also "utf8", any case) as they are, "base64" decoded. field and
// encodingField name the params in errors.
func decodeBytes(value, encoding, field, encodingField string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "", "utf-8", "utf8":
		return []byte(value), nil
	case "base64":
		data, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, fault.Param(fault.KindInvalidParams, field, "%q is not valid base64: %v", field, err)
		}
		return data, nil
	}
	return nil, fault.Param(fault.KindInvalidParams, encodingField, "%q must be \"utf-8\" or \"base64\", got %q", encodingField, encoding)
}

// containerPath validates an absolute path inside a container and cleans it.
func containerPath(p, field string) (string, error) {
	switch {
	case strings.ContainsRune(p, 0):
		return "", fault.Param(fault.KindInvalidParams, field, "%q contains a NUL byte", field)
	case !strings.HasPrefix(p, "/"):
		return "", fault.Param(fault.KindInvalidParams, field, "%q must be an absolute path, got %q", field, p)
	}
	clean := path.Clean(p)
	if clean == "/" {
		return "", fault.Param(fault.KindInvalidParams, field, "%q must name a file, not /", field)
	}
	return clean, nil
}
