package handlers

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	apihandlers "github.com/containers/podman/v5/pkg/api/handlers"
	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	podmancopy "github.com/containers/podman/v5/pkg/copy"
	"github.com/containers/podman/v5/pkg/errorhandling"

	"github.com/podman-worker/podman-worker/rpc"
)

// This file holds the methods that act inside a container: exec and
// add_file, plus the archive helpers add_user (passwd.go) shares.

// commandLine is a command as callers send it: a string runs under
// /bin/sh -c (shell features wanted), an array of strings is the argv itself
// (no shell, so nothing in it is ever interpreted).
type commandLine []string

func (c *commandLine) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil // left empty: `rpc:"required"` reports it
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			return rpc.Errorf(rpc.KindInvalidParams, "the command string is empty")
		}
		*c = commandLine{"/bin/sh", "-c", s}
	case len(data) > 0 && data[0] == '[':
		var argv []string
		if err := json.Unmarshal(data, &argv); err != nil {
			return rpc.Errorf(rpc.KindInvalidParams, "an array of strings is expected")
		}
		if len(argv) == 0 || argv[0] == "" {
			return rpc.Errorf(rpc.KindInvalidParams, "the argv array needs a non-empty program name first")
		}
		*c = argv
	default:
		return rpc.Errorf(rpc.KindInvalidParams, "a string (run by /bin/sh -c) or an array of strings (argv) is expected")
	}
	for _, arg := range *c {
		// The kernel's argv is NUL-terminated: such an argument cannot be passed.
		if strings.ContainsRune(arg, 0) {
			return rpc.Errorf(rpc.KindInvalidParams, "the command contains a NUL byte")
		}
	}
	return nil
}

// userPattern is what exec accepts as user: a name or id, optionally
// ":group". Anything else (spaces, shell characters) is refused up front.
var userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)

type execParams struct {
	Name    string      `json:"name" rpc:"required"`
	Command commandLine `json:"command" rpc:"required"`
	User    string      `json:"user"`
}

type execResult struct {
	ExitCode        int    `json:"exit_code"`
	Output          string `json:"output"`
	Success         bool   `json:"success"`
	OutputTruncated bool   `json:"output_truncated,omitempty"`
}

// exec runs a command in a running container and answers its exit code and
// output. A non-zero exit is a result, not an error: the caller asked to run
// it and learns how it went.
func (s *Service) exec(ctx context.Context, p execParams) (any, error) {
	if p.User != "" && !userPattern.MatchString(p.User) {
		return nil, rpc.Errorf(rpc.KindInvalidParams,
			"Invalid params: \"user\" must be a user name or id, optionally with :group (e.g. \"1000\", \"bob:bob\")").With("field", "user")
	}
	cfg := new(apihandlers.ExecCreateConfig)
	cfg.Cmd = p.Command
	cfg.User = p.User
	cfg.AttachStdout, cfg.AttachStderr = true, true // no stdin, no TTY: output is multiplexed and ends at exit
	id, err := containers.ExecCreate(ctx, p.Name, cfg)
	if err != nil {
		return nil, execError(p, err)
	}
	defer s.removeExec(ctx, id)

	// The output is bounded (Options.MaxOutputBytes, 1 MiB by default) so
	// one chatty command cannot grow the worker or the reply without limit.
	out := &cappedBuffer{max: s.maxOutput}
	actx, release, err := attachConnection(ctx)
	if err != nil {
		return nil, err
	}
	// One writer for both streams keeps them interleaved as they arrive.
	// Explicit streams and AttachInput false: otherwise the bindings look at
	// the worker's own stdin/stdout, and stdout is the protocol.
	opts := new(containers.ExecStartAndAttachOptions).
		WithOutputStream(io.Writer(out)).WithErrorStream(io.Writer(out)).
		WithAttachOutput(true).WithAttachError(true).WithAttachInput(false)
	err = containers.ExecStartAndAttach(actx, id, opts)
	release()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, execError(p, err)
	}
	code, err := execExitCode(ctx, id)
	if err != nil {
		return nil, err
	}
	return execResult{ExitCode: code, Output: out.String(), Success: code == 0, OutputTruncated: out.truncated}, nil
}

// execExitCode reads the exit code of a finished session. Podman may record
// it a moment after the attach stream ends, so a session still marked
// running is asked again briefly.
func execExitCode(ctx context.Context, id string) (int, error) {
	for i := 0; ; i++ {
		info, err := containers.ExecInspect(ctx, id, nil)
		if err != nil {
			return 0, err
		}
		if !info.Running {
			return info.ExitCode, nil
		}
		if i == 100 {
			return 0, rpc.Errorf(rpc.KindPodman, "exec session %s still runs 2s after its output ended; no exit code", id)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeExec drops the exec session at once on Podman 4.8+, where a
// cancelled call forces removal, which also kills the command. Older
// services have no such endpoint (the bindings refuse the call): 4.3.1
// drops finished sessions by itself about five minutes after they exit, and
// a cancelled command keeps running in the container until it ends.
func (s *Service) removeExec(ctx context.Context, id string) {
	force := ctx.Err() != nil
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := containers.ExecRemove(rctx, id, new(containers.ExecRemoveOptions).WithForce(force))
	var old *bindings.APIVersionError
	if err != nil && !errors.As(err, &old) {
		s.log.Debug().Err(err).Str("exec_id", id).Msg("removing exec session")
	}
}

// execError turns the Podman errors a caller can act on into their kinds;
// the rest goes to the adapter's mapping (404 -> NotFound and so on).
func execError(p execParams, err error) error {
	var model *errorhandling.ErrorModel
	if !errors.As(err, &model) {
		return err
	}
	switch {
	case model.Code() == http.StatusConflict || strings.Contains(model.Because, "container state improper"):
		return rpc.Wrap(rpc.KindConflict, err, "container %q is not running: start it before exec (%s)", p.Name, model.Error()).With("container", p.Name)
	case p.User != "" && (strings.Contains(model.Because, "no matching entries in") || strings.Contains(model.Error(), "unable to find user") || strings.Contains(model.Error(), "unable to find group")):
		return rpc.Wrap(rpc.KindInvalidParams, err, "Invalid params: \"user\": %s", model.Error()).With("field", "user")
	}
	return err
}

// cappedBuffer keeps the first max bytes written and counts the rest as
// truncated. It never fails a write, so the stream is drained to the end
// and the command is not blocked on a full pipe.
type cappedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if len(p) > room {
		b.truncated = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

// String is the kept output, without a character the cut split in two.
func (b *cappedBuffer) String() string {
	out := b.buf.Bytes()
	if b.truncated {
		for i := 1; i <= utf8.UTFMax-1 && i <= len(out); i++ {
			if utf8.RuneStart(out[len(out)-i]) {
				if !utf8.FullRune(out[len(out)-i:]) {
					out = out[:len(out)-i]
				}
				break
			}
		}
	}
	return string(out)
}

// attachConnection returns ctx carrying a private copy of the bindings
// connection, and a release func to call once the attach is over.
//
// Why: ExecStartAndAttach (like Attach) replaces conn.Client.Transport to
// capture the hijacked socket. On the worker's shared connection that is a
// data race with every concurrent call, throws away the tuned transport and
// nests one more dial wrapper per call. The copy also records every socket
// it dials, so cancelling ctx closes them: Go's HTTP client stops watching
// the context once a response switches protocols, so nothing else would
// interrupt a read blocked on a silent command.
func attachConnection(ctx context.Context) (context.Context, func(), error) {
	shared, err := bindings.GetClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	rt := shared.Client.Transport
	if nb, ok := rt.(*noBlindRetry); ok {
		rt = nb.next
	}
	base, ok := rt.(*http.Transport)
	if !ok || base.DialContext == nil {
		return nil, nil, fmt.Errorf("the Podman connection has an unexpected transport %T", shared.Client.Transport)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	tr := base.Clone()
	dial := base.DialContext
	tr.DialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			_ = c.Close()
			return nil, net.ErrClosed
		}
		conns = append(conns, c)
		return c, nil
	}
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
	}
	client := *shared.Client
	client.Transport = tr
	private := *shared
	private.Client = &client
	stop := context.AfterFunc(ctx, closeAll)
	release := func() {
		stop()
		closeAll()
	}
	return swapConnection{Context: ctx, shared: shared, private: &private}, release, nil
}

// swapConnection answers the private connection wherever ctx would answer
// the shared one; the bindings' context key is unexported, so the value is
// swapped rather than the key reused.
type swapConnection struct {
	context.Context
	shared, private *bindings.Connection
}

func (c swapConnection) Value(key any) any {
	v := c.Context.Value(key)
	if conn, ok := v.(*bindings.Connection); ok && conn == c.shared {
		return c.private
	}
	return v
}

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
		mode = m
	}

	// Podman 4.3.1 silently creates missing directories on upload; a caller
	// naming a directory that is not there has most likely made a mistake,
	// so the parent is checked first. Overwriting a directory with a file is
	// refused for the same reason.
	dir, base := path.Split(dest)
	dir = path.Clean(dir)
	if err := requireDir(ctx, p.Name, dir); err != nil {
		return nil, err
	}
	if st, err := containers.Stat(ctx, p.Name, dest); err == nil && st != nil && st.IsDir {
		return nil, rpc.Errorf(rpc.KindConflict, "%s is a directory in container %q", dest, p.Name).With("field", "dest_path")
	}
	err = putArchive(ctx, p.Name, dir, []archiveEntry{{hdr: &tar.Header{
		Typeflag: tar.TypeReg, Name: base, Mode: mode, ModTime: time.Now(),
	}, data: data}})
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

// requireDir answers NotFound when dir (or the container) does not exist and
// InvalidParams when dir is not a directory.
func requireDir(ctx context.Context, name, dir string) error {
	st, err := containers.Stat(ctx, name, dir)
	switch {
	case errors.Is(err, podmancopy.ErrENOENT):
		if err := containerMissing(ctx, name); err != nil {
			return err
		}
		return rpc.Errorf(rpc.KindNotFound, "directory %s does not exist in container %q", dir, name).With("path", dir)
	case err != nil:
		return err
	case st != nil && !st.IsDir:
		return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %s is not a directory in container %q", dir, name).With("field", "dest_path")
	}
	return nil
}

// containerMissing tells the two 404s of Podman's archive endpoints apart:
// it answers NotFound when the container itself is missing, nil otherwise.
func containerMissing(ctx context.Context, name string) error {
	ok, err := containers.Exists(ctx, name, nil)
	if err != nil {
		return err
	}
	if !ok {
		return rpc.Errorf(rpc.KindNotFound, "no such container: %s", name).With("container", name)
	}
	return nil
}

// archiveEntry is one member of an upload: a header (ownership defaults to
// root) and, for regular files, the content.
type archiveEntry struct {
	hdr  *tar.Header
	data []byte
}

// putArchive uploads entries into dir of the container in one request, so
// related files (passwd, group, shadow) change together.
func putArchive(ctx context.Context, name, dir string, entries []archiveEntry) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeReg {
			e.hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	// Chown false keeps the owners written in the archive: Podman's libpod
	// endpoint otherwise gives every file to the container's user (root
	// here), which would leave a new home directory unusable by its owner.
	// NoOverwriteDirNonDir: a file never replaces a directory or vice versa.
	opts := new(containers.CopyOptions).WithChown(false).WithNoOverwriteDirNonDir(true)
	copyFn, err := containers.CopyFromArchiveWithOptions(ctx, name, dir, &buf, opts)
	if err != nil {
		return err
	}
	if err := copyFn(); err != nil {
		// The bindings reduce a failed upload to the HTTP status line.
		if strings.HasPrefix(err.Error(), "404") {
			if merr := containerMissing(ctx, name); merr != nil {
				return merr
			}
			return rpc.Wrap(rpc.KindNotFound, err, "uploading into %s of container %q: %s", dir, name, err)
		}
		return rpc.Wrap(rpc.KindPodman, err, "uploading into %s of container %q: %s", dir, name, err)
	}
	return nil
}

// maxReadFile bounds a file read back from a container (account databases
// are small; this only guards memory against a surprise).
const maxReadFile = 16 << 20

// errNoFile means the container exists but the file does not.
var errNoFile = errors.New("no such file")

// readFile reads one regular file of a container through the archive
// download. It answers errNoFile when the file does not exist.
func readFile(ctx context.Context, name, file string) (*tar.Header, []byte, error) {
	// A capped buffer keeps memory bounded even if the file is huge; the
	// tar framing needs a little room on top of the content.
	buf := &cappedBuffer{max: maxReadFile + 64<<10}
	copyFn, err := containers.CopyToArchive(ctx, name, file, buf)
	if err != nil {
		var model *errorhandling.ErrorModel
		if errors.As(err, &model) && model.Code() == http.StatusNotFound {
			if merr := containerMissing(ctx, name); merr != nil {
				return nil, nil, merr
			}
			return nil, nil, errNoFile
		}
		return nil, nil, err
	}
	if err := copyFn(); err != nil {
		return nil, nil, err
	}
	if buf.truncated {
		return nil, nil, rpc.Errorf(rpc.KindConflict, "%s in container %q is larger than %d bytes", file, name, maxReadFile)
	}
	tr := tar.NewReader(&buf.buf)
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s of container %q: %w", file, name, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, nil, rpc.Errorf(rpc.KindConflict, "%s in container %q is not a regular file", file, name)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, nil, err
	}
	return hdr, data, nil
}
