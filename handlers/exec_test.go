package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/fault"
)

func TestExec(t *testing.T) {
	e := podmanTest(t)
	exec := adapt(e.s, e.s.exec).call
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
				if _, err := call(context.Background(), adapt(e.s, e.s.ping).call, ``); err != nil {
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
		wantError(t, exec, `{"name":"no-such-container","command":"true"}`, fault.KindNotFound, "")
		stopped := e.container(t, false)
		if err := wantError(t, exec, `{"name":`+q(stopped)+`,"command":"true"}`, fault.KindConflict, ""); !strings.Contains(err.Message, "start it") {
			t.Errorf("the conflict does not say to start the container: %s", err.Message)
		}
		wantError(t, exec, `{"name":`+q(c)+`,"command":"true","user":"no-such-user"}`, fault.KindInvalidParams, "user")
		for _, bad := range []string{`"bob; rm -rf /"`, `"a b"`, `":x"`, `"-1"`, `"a:b:c"`, `7`} {
			wantError(t, exec, `{"name":`+q(c)+`,"command":"true","user":`+bad+`}`, fault.KindInvalidParams, "user")
		}
		for _, bad := range []string{`""`, `"  "`, `[]`, `[""]`, `[1]`, `5`, `{}`, `null`, `["a\u0000b"]`} {
			wantError(t, exec, `{"name":`+q(c)+`,"command":`+bad+`}`, fault.KindInvalidParams, "command")
		}
		wantError(t, exec, `{"command":"true"}`, fault.KindInvalidParams, "name")
		wantError(t, exec, `{"name":`+q(c)+`,"command":"true","tty":true}`, fault.KindInvalidParams, "tty")
	})
}
