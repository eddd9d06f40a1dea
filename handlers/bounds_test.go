package handlers

import (
	"fmt"
	"strings"
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

// Numbers Podman turns into allocations are refused above a ceiling,
// before Podman sees them: logs' tail of 4e9 ran the shared service out of
// memory, and 9223372036854775807 answered "makechan: size out of range".
// Logs keeps answering afterwards.
func TestLogsTailHasACeiling(t *testing.T) {
	e := podmanTest(t)
	c := e.container(t, true)
	logs := adapt(e.s, e.s.logs).call
	for _, tail := range []string{"10001", "500000000", "4000000000", "9223372036854775807"} {
		err := wantError(t, logs, `{"name":`+q(c)+`,"tail":`+tail+`}`, fault.KindForbidden, "tail")
		if !strings.Contains(err.Message, "10000") {
			t.Errorf("tail %s: %q does not name the ceiling", tail, err.Message)
		}
	}
	mustCall[logsResult](t, logs, `{"name":`+q(c)+`,"tail":10000}`)
}

// run and create refuse a config past the ceilings, or with a NUL in a
// string that reaches runc, naming the field; a run with 400k env entries
// made ps take 30 s for every caller. Each is refused before Podman is
// asked, and a good run is answered afterwards.
func TestRunRefusesOversizedAndNULConfigs(t *testing.T) {
	e := podmanTest(t)
	run := adapt(e.s, e.s.run).call
	many := func(n int, f func(i int) string) string {
		items := make([]string, n)
		for i := range items {
			items[i] = f(i)
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	base := `"image":"localhost/busybox:latest"`
	for _, c := range []struct {
		params, field string
		kind          fault.Kind
	}{
		{`"env":` + many(MaxEnvEntries+1, func(i int) string { return q(fmt.Sprintf("K%d=v", i)) }), "env", fault.KindForbidden},
		{`"env":{"BIG":` + q(strings.Repeat("x", MaxSpecBytes)) + `}`, "env", fault.KindForbidden},
		{`"command":` + many(MaxArgs+1, func(int) string { return `"a"` }), "command", fault.KindInvalidParams},
		{`"command":["echo",` + q(strings.Repeat("x", MaxSpecBytes)) + `]`, "command", fault.KindInvalidParams},
		{`"entrypoint":` + many(MaxArgs+1, func(int) string { return `"a"` }), "entrypoint", fault.KindForbidden},
		{`"ports":` + many(MaxListItems+1, func(i int) string { return q(fmt.Sprintf("%d:80", 10000+i)) }), "ports", fault.KindForbidden},
		{`"volumes":` + many(MaxListItems+1, func(i int) string { return q(fmt.Sprintf("v%d:/d%d", i, i)) }), "volumes", fault.KindForbidden},
		{`"mounts":` + many(MaxListItems+1, func(i int) string { return q(fmt.Sprintf("tmpfs:/d%d", i)) }), "mounts", fault.KindForbidden},
		{`"env":{"K":"a\u0000b"}`, "env", fault.KindInvalidParams},
		{`"env":["K\u0000=v"]`, "env", fault.KindInvalidParams},
		{`"workdir":"/tmp\u0000x"`, "workdir", fault.KindInvalidParams},
		{`"user":"1000\u0000"`, "user", fault.KindInvalidParams},
		{`"entrypoint":["sh\u0000"]`, "entrypoint", fault.KindInvalidParams},
		{`"command":["echo","a\u0000b"]`, "command", fault.KindInvalidParams},
		{`"name":"a\u0000b"`, "name", fault.KindInvalidParams},
		{`"image":"localhost/busybox\u0000:latest"`, "image", fault.KindInvalidParams},
	} {
		params := `{` + base + `,` + c.params + `}`
		if strings.Contains(c.params, `"image"`) {
			params = `{` + c.params + `}`
		}
		wantError(t, run, params, c.kind, c.field)
	}
	if r := mustCall[runResult](t, run, `{`+base+`,"command":["echo","ok"]}`); r.ExitCode != 0 {
		t.Errorf("a good run after the refusals: %+v", r)
	}
}

// A mount target that shadows the root or the kernel's trees is refused,
// for volumes and tmpfs mounts alike, ":ro" or not: runc made dev, etc,
// proc, sys... in the host folder mounted at /.
func TestMountTargetsThatShadowTheSandboxAreRefused(t *testing.T) {
	e := podmanTest(t)
	run := adapt(e.s, e.s.run).call
	for _, c := range []struct{ field, value string }{
		{"volumes", "data:/"}, {"volumes", "data:/:ro"}, {"volumes", "data://"}, {"volumes", "data:/tmp/.."},
		{"volumes", "data:/proc"}, {"volumes", "data:/sys/fs"}, {"volumes", "data:/dev"},
		{"mounts", "data:/"}, {"mounts", "tmpfs:/"}, {"mounts", "tmpfs:/proc/sys"}, {"mounts", "tmpfs:/dev/shm/x"},
	} {
		wantError(t, run, `{"image":"localhost/busybox:latest","`+c.field+`":[`+q(c.value)+`]}`, fault.KindForbidden, c.field)
	}
}
