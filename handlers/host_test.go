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
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	podmancopy "github.com/containers/podman/v5/pkg/copy"
	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/handlers/podmantest"
	"github.com/podman-worker/podman-worker/rpc"
)

// These tests drive the handlers against a real, private Podman service
// (podmantest), through the same params decoding and error mapping the
// worker uses. The service starts on first use, so the package's unit tests
// still run alone without Podman.

var (
	envOnce sync.Once
	env     *podmanEnv
	envErr  error
)

type podmanEnv struct {
	svc  *podmantest.Service
	s    *Service        // the handlers under test
	conn context.Context // a bindings connection of the test's own, for setup and checks
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		// Stop removes any container a failed test left behind first.
		if err := env.svc.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// podmanTest returns the shared private service, starting it on first use.
func podmanTest(t *testing.T) *podmanEnv {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		svc, err := podmantest.Start(ctx)
		if err != nil {
			envErr = err
			return
		}
		e := &podmanEnv{svc: svc}
		env = e // TestMain stops it from here on
		if envErr = podmantest.EnsureBusybox(ctx, svc.URI); envErr != nil {
			return
		}
		podman, err := NewPodman(svc.URI, 4, zerolog.Nop())
		if err != nil {
			envErr = err
			return
		}
		e.s = New(podman, zerolog.Nop(), Options{})
		e.conn, envErr = bindings.NewConnection(context.Background(), svc.URI)
	})
	if envErr != nil {
		t.Fatalf("private podman service: %v", envErr)
	}
	return env
}

var containerSeq atomic.Int32

// container creates a busybox container (no network) that lives for the
// test, started or only created.
func (e *podmanEnv) container(t *testing.T, start bool) string {
	t.Helper()
	sg := specgen.NewSpecGenerator(podmantest.BusyboxImage, false)
	sg.Name = fmt.Sprintf("host-test-%d", containerSeq.Add(1))
	sg.Command = []string{"sleep", "600"}
	sg.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	r, err := containers.CreateWithSpec(e.conn, sg, nil)
	if err != nil {
		t.Fatalf("creating a container: %v", err)
	}
	t.Cleanup(func() {
		_, _ = containers.Remove(e.conn, r.ID, new(containers.RemoveOptions).WithForce(true).WithTimeout(0))
	})
	if start {
		if err := containers.Start(e.conn, r.ID, nil); err != nil {
			t.Fatalf("starting %s: %v", sg.Name, err)
		}
	}
	return sg.Name
}

// call runs method m the way the worker does: raw params through
// podmanMethod. It answers the result as JSON, or the error.
func call(ctx context.Context, m rpc.Method, params string) (json.RawMessage, error) {
	res, err := m(ctx, json.RawMessage(params))
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// mustCall fails the test unless the call succeeds, and decodes its result.
func mustCall[R any](t *testing.T, m rpc.Method, params string) R {
	t.Helper()
	raw, err := call(context.Background(), m, params)
	if err != nil {
		t.Fatalf("%s: %v", params, err)
	}
	var r R
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: decoding %s: %v", params, raw, err)
	}
	return r
}

// wantError fails the test unless the call fails with kind (and, when field
// is not "", names that field). It answers the error.
func wantError(t *testing.T, m rpc.Method, params string, kind rpc.Kind, field string) *rpc.Error {
	t.Helper()
	raw, err := call(context.Background(), m, params)
	var rerr *rpc.Error
	if !errors.As(err, &rerr) {
		t.Fatalf("%s: got %s, %v; want a %s error", params, raw, err, (&rpc.Error{Kind: kind}).Type())
	}
	if rerr.Kind != kind || (field != "" && rerr.Fields["field"] != field) {
		t.Fatalf("%s: got %s error %q (fields %v); want %s naming %q",
			params, rerr.Type(), rerr.Message, rerr.Fields, (&rpc.Error{Kind: kind}).Type(), field)
	}
	return rerr
}

// q quotes a value as JSON, for building params.
func q(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// readBack reads one file of a container through the archive download,
// independently of the handlers.
func (e *podmanEnv) readBack(t *testing.T, name, file string) (*tar.Header, []byte) {
	t.Helper()
	var buf bytes.Buffer
	copyFn, err := containers.CopyToArchive(e.conn, name, file, &buf)
	if err == nil {
		err = copyFn()
	}
	if err != nil {
		t.Fatalf("reading %s back: %v", file, err)
	}
	tr := tar.NewReader(&buf)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("reading %s back: %v", file, err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("reading %s back: %v", file, err)
	}
	return hdr, data
}

type execOut struct {
	ExitCode        int    `json:"exit_code"`
	Output          string `json:"output"`
	Success         bool   `json:"success"`
	OutputTruncated bool   `json:"output_truncated"`
}

func TestExec(t *testing.T) {
	e := podmanTest(t)
	exec := podmanMethod(e.s, e.s.exec)
	c := e.container(t, true)
	run := func(params string) execOut { t.Helper(); return mustCall[execOut](t, exec, params) }

	t.Run("shell string", func(t *testing.T) {
		r := run(`{"name":` + q(c) + `,"command":"echo a; echo b >&2; exit 3"}`)
		if r.ExitCode != 3 || r.Success || !strings.Contains(r.Output, "a\n") || !strings.Contains(r.Output, "b\n") {
			t.Errorf("got %+v; want exit 3, success false, output with a and b", r)
		}
	})
	t.Run("argv without shell", func(t *testing.T) {
		r := run(`{"name":` + q(c) + `,"command":["echo","$HOME","a;b"]}`)
		if r != (execOut{ExitCode: 0, Output: "$HOME a;b\n", Success: true}) {
			t.Errorf("got %+v; want the literal arguments echoed", r)
		}
	})
	t.Run("user", func(t *testing.T) {
		for user, want := range map[string]string{"65534": "65534 65534\n", "nobody": "65534 65534\n", "1234:65534": "1234 65534\n"} {
			if r := run(`{"name":` + q(c) + `,"command":"echo $(id -u) $(id -g)","user":` + q(user) + `}`); r.Output != want {
				t.Errorf("user %s: got %+v, want %q", user, r, want)
			}
		}
	})
	t.Run("missing program", func(t *testing.T) {
		// runc reports it and Podman answers exit 127, like a shell.
		r := run(`{"name":` + q(c) + `,"command":["no-such-program"]}`)
		if r.ExitCode != 127 || r.Success {
			t.Errorf("got %+v; want exit 127", r)
		}
	})
	t.Run("output capped", func(t *testing.T) {
		r := run(`{"name":` + q(c) + `,"command":"head -c 2000000 /dev/zero | tr '\\0' x"}`)
		if len(r.Output) != 1<<20 || !r.OutputTruncated || strings.Trim(r.Output, "x") != "" || !r.Success {
			t.Errorf("got %d bytes, truncated %v, success %v; want 1 MiB of x's, truncated", len(r.Output), r.OutputTruncated, r.Success)
		}
		raw, _ := call(context.Background(), exec, `{"name":`+q(c)+`,"command":"echo hi"}`)
		if strings.Contains(string(raw), "output_truncated") {
			t.Errorf("a short output says output_truncated: %s", raw)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// Each attach uses a private copy of the connection; under -race
		// this also checks that the shared one is left alone.
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				raw, err := call(context.Background(), exec, fmt.Sprintf(`{"name":%s,"command":["echo","%d"]}`, q(c), i))
				if err != nil || !strings.Contains(string(raw), fmt.Sprintf(`"output":"%d\n"`, i)) {
					t.Errorf("call %d: %s, %v", i, raw, err)
				}
			})
			wg.Go(func() {
				if _, err := call(context.Background(), podmanMethod(e.s, e.s.ping), ``); err != nil {
					t.Errorf("ping: %v", err)
				}
			})
		}
		wg.Wait()
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := call(ctx, exec, `{"name":`+q(c)+`,"command":["sleep","30"]}`)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("got %v after %v; want the deadline error promptly", err, time.Since(start))
		}
	})
	t.Run("errors", func(t *testing.T) {
		wantError(t, exec, `{"name":"no-such-container","command":"true"}`, rpc.KindNotFound, "")
		stopped := e.container(t, false)
		if err := wantError(t, exec, `{"name":`+q(stopped)+`,"command":"true"}`, rpc.KindConflict, ""); !strings.Contains(err.Message, "start it") {
			t.Errorf("the conflict does not say to start the container: %s", err.Message)
		}
		wantError(t, exec, `{"name":`+q(c)+`,"command":"true","user":"no-such-user"}`, rpc.KindInvalidParams, "user")
		for _, bad := range []string{`"bob; rm -rf /"`, `"a b"`, `":x"`, `"-1"`, `"a:b:c"`, `7`} {
			wantError(t, exec, `{"name":`+q(c)+`,"command":"true","user":`+bad+`}`, rpc.KindInvalidParams, "user")
		}
		for _, bad := range []string{`""`, `"  "`, `[]`, `[""]`, `[1]`, `5`, `{}`, `null`, `["a\u0000b"]`} {
			wantError(t, exec, `{"name":`+q(c)+`,"command":`+bad+`}`, rpc.KindInvalidParams, "command")
		}
		wantError(t, exec, `{"command":"true"}`, rpc.KindInvalidParams, "name")
		wantError(t, exec, `{"name":`+q(c)+`,"command":"true","tty":true}`, rpc.KindInvalidParams, "tty")
	})
}

func TestAddFile(t *testing.T) {
	e := podmanTest(t)
	addFile := podmanMethod(e.s, e.s.addFile)
	exec := podmanMethod(e.s, e.s.exec)
	c := e.container(t, true)
	type result struct {
		DestPath string `json:"dest_path"`
		Size     int    `json:"size"`
	}

	t.Run("every byte", func(t *testing.T) {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		r := mustCall[result](t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/./bytes.bin","content":`+
			q(base64.StdEncoding.EncodeToString(all))+`,"encoding":"base64","mode":"600"}`)
		if r != (result{"/tmp/bytes.bin", 256}) {
			t.Errorf("got %+v", r)
		}
		hdr, data := e.readBack(t, c, "/tmp/bytes.bin")
		if !bytes.Equal(data, all) || hdr.Mode&0o7777 != 0o600 {
			t.Errorf("read back %d bytes (equal %v), mode %o; want the 256 bytes, 0600", len(data), bytes.Equal(data, all), hdr.Mode)
		}
		// Podman's download reports every owner as 0:0, so ask stat.
		if out := mustCall[execOut](t, exec, `{"name":`+q(c)+`,"command":["stat","-c","%a %u:%g","/tmp/bytes.bin"]}`); out.Output != "600 0:0\n" {
			t.Errorf("stat: %q, want 600 0:0", out.Output)
		}
	})
	t.Run("utf-8, default mode, overwrite", func(t *testing.T) {
		text := "héllo\n\"wörld\" $HOME `x`\n"
		mustCall[result](t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/t.txt","content":"old"}`)
		r := mustCall[result](t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/t.txt","content":`+q(text)+`}`)
		if r.Size != len(text) {
			t.Errorf("size %d, want %d", r.Size, len(text))
		}
		out := mustCall[execOut](t, exec, `{"name":`+q(c)+`,"command":["cat","/tmp/t.txt"]}`)
		if out.Output != text {
			t.Errorf("cat: %q, want %q", out.Output, text)
		}
		out = mustCall[execOut](t, exec, `{"name":`+q(c)+`,"command":["stat","-c","%a %u:%g","/tmp/t.txt"]}`)
		if out.Output != "644 0:0\n" {
			t.Errorf("stat: %q, want 644 0:0", out.Output)
		}
	})
	t.Run("empty and executable", func(t *testing.T) {
		mustCall[result](t, addFile, `{"name":`+q(c)+`,"dest_path":"/bin/hello","content":"#!/bin/sh\necho hello \"$@\"\n","mode":"0755"}`)
		out := mustCall[execOut](t, exec, `{"name":`+q(c)+`,"command":["hello","x"]}`)
		if out.Output != "hello x\n" {
			t.Errorf("running the script: %+v", out)
		}
		if r := mustCall[result](t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/empty","content":""}`); r.Size != 0 {
			t.Errorf("empty file: %+v", r)
		}
		if _, data := e.readBack(t, c, "/tmp/empty"); len(data) != 0 {
			t.Errorf("empty file holds %q", data)
		}
	})
	t.Run("created container", func(t *testing.T) {
		// The archive upload works on a container that never ran.
		created := e.container(t, false)
		mustCall[result](t, addFile, `{"name":`+q(created)+`,"dest_path":"/etc/motd","content":"hi"}`)
		if _, data := e.readBack(t, created, "/etc/motd"); string(data) != "hi" {
			t.Errorf("read back %q", data)
		}
	})
	t.Run("errors", func(t *testing.T) {
		err := wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/no/such/dir/f","content":"x"}`, rpc.KindNotFound, "")
		if !strings.Contains(err.Message, "/no/such/dir") {
			t.Errorf("the error does not name the directory: %s", err.Message)
		}
		if _, err := containers.Stat(e.conn, c, "/no"); !errors.Is(err, podmancopy.ErrENOENT) {
			t.Errorf("the refused upload created /no: %v", err)
		}
		wantError(t, addFile, `{"name":"no-such-container","dest_path":"/tmp/f","content":"x"}`, rpc.KindNotFound, "")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp","content":"x"}`, rpc.KindConflict, "dest_path")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/etc/passwd/x","content":"x"}`, rpc.KindInvalidParams, "dest_path")
		for _, bad := range []string{`"tmp/f"`, `"./f"`, `"/"`, `"/.."`, `"/tmp/a\u0000b"`, `""`} {
			wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":`+bad+`,"content":"x"}`, rpc.KindInvalidParams, "dest_path")
		}
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f"}`, rpc.KindInvalidParams, "content")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f","content":"not base64!","encoding":"base64"}`, rpc.KindInvalidParams, "content")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f","content":"x","encoding":"latin1"}`, rpc.KindInvalidParams, "encoding")
		for _, bad := range []string{`"999"`, `"10000"`, `"rw-"`, `"-1"`, `420`} {
			wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f","content":"x","mode":`+bad+`}`, rpc.KindInvalidParams, "mode")
		}
	})
}

func TestAddUser(t *testing.T) {
	e := podmanTest(t)
	addUser := podmanMethod(e.s, e.s.addUser)
	exec := podmanMethod(e.s, e.s.exec)
	c := e.container(t, true)
	const password = "s3cret Pässword;$(x)"
	type result struct {
		Username string `json:"username"`
		Created  bool   `json:"created"`
	}
	// Every answer is kept, to check that the password appears in none.
	var replies []string
	record := func(raw json.RawMessage, err error) {
		replies = append(replies, string(raw))
		if rerr := rpc.AsError(err); err != nil {
			b, _ := json.Marshal(rerr.Fields)
			replies = append(replies, rerr.Message, string(b))
		}
	}
	fail := func(params string, kind rpc.Kind, field string) {
		t.Helper()
		record(nil, wantError(t, addUser, params, kind, field))
	}
	run := func(params string) execOut { t.Helper(); return mustCall[execOut](t, exec, params) }

	// Debian's arrangement: /etc/shadow is root:shadow 0640; add_user must
	// keep it.
	if out := run(`{"name":` + q(c) + `,"command":"echo shadow:x:42: >> /etc/group && chown root:shadow /etc/shadow"}`); !out.Success {
		t.Fatalf("preparing the container: %+v", out)
	}
	raw, err := call(context.Background(), addUser, `{"name":`+q(c)+`,"username":"bob","password":`+q(password)+`}`)
	record(raw, err)
	if err != nil || string(raw) != `{"username":"bob","created":true}` {
		t.Fatalf("add_user bob: %s, %v", raw, err)
	}
	if out := run(`{"name":` + q(c) + `,"command":["id","bob"]}`); !strings.HasPrefix(out.Output, "uid=1000(bob) gid=1000(bob)") {
		t.Errorf("id bob: %+v", out)
	}
	if out := run(`{"name":` + q(c) + `,"command":"id -un; id -u","user":"bob"}`); out.Output != "bob\n1000\n" {
		t.Errorf("as bob: %+v", out)
	}
	if out := run(`{"name":` + q(c) + `,"command":["stat","-c","%a %u:%g","/home/bob"]}`); out.Output != "755 1000:1000\n" {
		t.Errorf("home: %+v", out)
	}
	if out := run(`{"name":` + q(c) + `,"command":["touch","/home/bob/x"],"user":"bob"}`); !out.Success {
		t.Errorf("bob cannot write to his home: %+v", out)
	}

	// The shadow entry: the hash verifies, with Go and with the container's
	// own mkpasswd, and the file kept its mode and owner.
	if out := run(`{"name":` + q(c) + `,"command":["stat","-c","%n %a %U:%G","/etc/passwd","/etc/group","/etc/shadow"]}`); out.Output !=
		"/etc/passwd 644 root:root\n/etc/group 644 root:root\n/etc/shadow 640 root:shadow\n" {
		t.Errorf("the account files changed mode or owner: %s", out.Output)
	}
	_, shadow := e.readBack(t, c, "/etc/shadow")
	if !strings.HasPrefix(string(shadow), "root:*:19000:0:99999:7:::\n") {
		t.Errorf("/etc/shadow lost its first line: %q", shadow)
	}
	entry := shadowEntry(t, shadow, "bob")
	fields := strings.Split(entry, ":")
	days := fmt.Sprint(time.Now().Unix() / 86400)
	if len(fields) != 9 || fields[2] != days || strings.Join(fields[3:], ":") != "0:99999:7:::" {
		t.Errorf("shadow entry %q", entry)
	}
	hash := fields[1]
	salt := strings.Split(hash, "$")[2]
	if !strings.HasPrefix(hash, "$6$") || len(salt) != 16 || !sha512CryptVerify([]byte(password), hash) {
		t.Errorf("shadow hash %q does not verify", hash)
	}
	if out := run(`{"name":` + q(c) + `,"command":["mkpasswd","-m","sha512","-S",` + q(salt) + `,` + q(password) + `]}`); out.Output != hash+"\n" {
		t.Errorf("busybox mkpasswd: %q, want %q", out.Output, hash)
	}
	if _, passwd := e.readBack(t, c, "/etc/passwd"); !strings.HasSuffix(string(passwd), "\nbob:x:1000:1000::/home/bob:/bin/sh\n") {
		t.Errorf("/etc/passwd: %q", passwd)
	}

	// A second user without a password gets the next id and a locked entry.
	mustCall[result](t, addUser, `{"name":`+q(c)+`,"username":"alice","shell":"/bin/ash"}`)
	if out := run(`{"name":` + q(c) + `,"command":["id","alice"]}`); !strings.HasPrefix(out.Output, "uid=1001(alice) gid=1001(alice)") {
		t.Errorf("id alice: %+v", out)
	}
	_, shadow = e.readBack(t, c, "/etc/shadow")
	if entry := shadowEntry(t, shadow, "alice"); !strings.HasPrefix(entry, "alice:!:") {
		t.Errorf("alice's shadow entry %q is not locked", entry)
	}

	t.Run("errors", func(t *testing.T) {
		fail(`{"name":`+q(c)+`,"username":"bob","password":`+q(password)+`}`, rpc.KindConflict, "username")
		fail(`{"name":"no-such-container","username":"carol","password":`+q(password)+`}`, rpc.KindNotFound, "")
		for _, bad := range []string{`"Bob"`, `"1bob"`, `"bob;id"`, `"a b"`, `"` + strings.Repeat("a", 33) + `"`, `""`, `7`} {
			fail(`{"name":`+q(c)+`,"username":`+bad+`,"password":`+q(password)+`}`, rpc.KindInvalidParams, "username")
		}
		for _, bad := range []string{`"sh"`, `"/bin/sh -c"`, `"/bin/$(x)"`, `"/"`} {
			fail(`{"name":`+q(c)+`,"username":"carol","shell":`+bad+`,"password":`+q(password)+`}`, rpc.KindInvalidParams, "shell")
		}
		fail(`{"name":`+q(c)+`,"username":"carol","password":""}`, rpc.KindInvalidParams, "password")
		fail(`{"name":`+q(c)+`,"username":"carol","password":12345678}`, rpc.KindInvalidParams, "password")
		fail(`{"name":`+q(c)+`,"username":"carol","password":`+q(password)+`,"extra":1}`, rpc.KindInvalidParams, "extra")
	})
	for _, r := range replies {
		if strings.Contains(r, "s3cret") || strings.Contains(r, "Pässword") {
			t.Errorf("a reply shows the password: %s", r)
		}
	}

	t.Run("no shadow file, created container", func(t *testing.T) {
		// An image without /etc/shadow gets one, readable by root only (the
		// busybox image has no shadow group); a created container is edited
		// through the archive endpoints all the same.
		c := e.container(t, true)
		if out := run(`{"name":` + q(c) + `,"command":["rm","/etc/shadow"]}`); !out.Success {
			t.Fatalf("rm /etc/shadow: %+v", out)
		}
		if err := containers.Stop(e.conn, c, new(containers.StopOptions).WithTimeout(0)); err != nil {
			t.Fatal(err)
		}
		mustCall[result](t, addUser, `{"name":`+q(c)+`,"username":"dave","password":"pw"}`)
		// The download names owners as the container knows them (its ids
		// are always 0:0), and the container cannot run stat now.
		hdr, shadow := e.readBack(t, c, "/etc/shadow")
		entry := shadowEntry(t, shadow, "dave")
		if hdr.Mode&0o7777 != 0o600 || hdr.Uname != "root" || hdr.Gname != "root" || !sha512CryptVerify([]byte("pw"), strings.Split(entry, ":")[1]) {
			t.Errorf("new /etc/shadow: mode %o owner %s:%s, %q", hdr.Mode, hdr.Uname, hdr.Gname, shadow)
		}
		hdr, _ = e.readBack(t, c, "/home/dave")
		if !hdr.FileInfo().IsDir() || hdr.Uname != "dave" || hdr.Gname != "dave" || hdr.Mode&0o7777 != 0o755 {
			t.Errorf("/home/dave: %+v", hdr)
		}
	})
}

// shadowEntry finds user's line in /etc/shadow content.
func shadowEntry(t *testing.T, shadow []byte, user string) string {
	t.Helper()
	for _, line := range strings.Split(string(shadow), "\n") {
		if strings.HasPrefix(line, user+":") {
			return line
		}
	}
	t.Fatalf("no shadow entry for %s in %q", user, shadow)
	return ""
}
