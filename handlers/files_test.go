package handlers

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	podmancopy "github.com/containers/podman/v5/pkg/copy"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
)

func TestAddFile(t *testing.T) {
	e := podmanTest(t)
	addFile := adapt(e.s, e.s.addFile).call
	exec := adapt(e.s, e.s.exec).call
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
		// Missing folders on the way are made (0755), as the seed's
		// upload did: this test container's root is writable.
		mustCall[result](t, addFile, `{"name":`+q(c)+`,"dest_path":"/no/such/dir/f","content":"x"}`)
		if _, data := e.readBack(t, c, "/no/such/dir/f"); string(data) != "x" {
			t.Errorf("a file in new folders reads back %q", data)
		}
		if st, err := containers.Stat(e.conn, c, "/no/such"); err != nil || !st.IsDir || st.Mode.Perm() != 0o755 {
			t.Errorf("the folder made on the way: %+v %v; want a 0755 folder", st, err)
		}
		wantError(t, addFile, `{"name":"no-such-container","dest_path":"/tmp/f","content":"x"}`, fault.KindNotFound, "")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp","content":"x"}`, fault.KindConflict, "dest_path")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/etc/passwd/x","content":"x"}`, fault.KindInvalidParams, "dest_path")
		for _, bad := range []string{`"tmp/f"`, `"./f"`, `"/"`, `"/.."`, `"/tmp/a\u0000b"`, `""`} {
			wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":`+bad+`,"content":"x"}`, fault.KindInvalidParams, "dest_path")
		}
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f"}`, fault.KindInvalidParams, "content")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f","content":"not base64!","encoding":"base64"}`, fault.KindInvalidParams, "content")
		wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f","content":"x","encoding":"latin1"}`, fault.KindInvalidParams, "encoding")
		for _, bad := range []string{`"999"`, `"10000"`, `"rw-"`, `"-1"`, `420`} {
			wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/f","content":"x","mode":`+bad+`}`, fault.KindInvalidParams, "mode")
		}
	})
	t.Run("a dest_path naming a directory", func(t *testing.T) {
		// Sent "/tmp/newfile/": it used to be cleaned to /tmp/newfile and
		// written as a file.
		err := wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/newfile/","content":"x"}`, fault.KindInvalidParams, "dest_path")
		if !strings.Contains(err.Message, `ends in "/"`) {
			t.Errorf("sent /tmp/newfile/: message %q does not say why", err.Message)
		}
		if _, err := containers.Stat(e.conn, c, "/tmp/newfile"); !errors.Is(err, podmancopy.ErrENOENT) {
			t.Errorf("sent /tmp/newfile/: something was written there (%v)", err)
		}
	})
	t.Run("special modes", func(t *testing.T) {
		for _, mode := range []string{"4755", "2755", "1777", "7777", "04711"} {
			err := wantError(t, addFile, `{"name":`+q(c)+`,"dest_path":"/tmp/suid","content":"x","mode":"`+mode+`"}`, fault.KindForbidden, "mode")
			if !strings.Contains(err.Message, "--allow-special-modes") {
				t.Errorf("sent mode %s: message %q does not name the flag", mode, err.Message)
			}
		}
		if _, err := containers.Stat(e.conn, c, "/tmp/suid"); !errors.Is(err, podmancopy.ErrENOENT) {
			t.Errorf("a refused set-uid file was written (%v)", err)
		}
		// The operator's flag allows them.
		p := limits.DefaultPolicy()
		p.AllowSpecialModes = true
		allowed := New(e.s.conns, zerolog.Nop(), Options{Policy: p})
		mustCall[result](t, adapt(allowed, allowed.addFile).call, `{"name":`+q(c)+`,"dest_path":"/tmp/suid","content":"x","mode":"4755"}`)
		if out := mustCall[execOut](t, exec, `{"name":`+q(c)+`,"command":["stat","-c","%a","/tmp/suid"]}`); out.Output != "4755\n" {
			t.Errorf("with --allow-special-modes, sent 4755: stat says %q", out.Output)
		}
	})
}
