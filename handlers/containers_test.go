package handlers

import (
	"context"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// logs keeps stdout and stderr apart and gives both together in the order
// they were written. (conmon logs what it reads from each pipe as it reads
// it: lines written within the same instant to both streams can only be
// ordered as conmon read them, hence the pauses.)
func TestLogsKeepWriteOrder(t *testing.T) {
	e := podmanTest(t)
	create := adapt(e.s, e.s.create).call
	logs := adapt(e.s, e.s.logs).call
	rm := adapt(e.s, e.s.rm).call
	mustCall[containerState](t, create, `{"image":"localhost/busybox:latest","name":"logs-order","command":"for i in 1 2 3; do echo out$i; sleep 0.2; echo err$i >&2; sleep 0.2; done"}`)
	t.Cleanup(func() { call(context.Background(), rm, `{"container":"logs-order","force":true}`) })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		data, err := containers.Inspect(e.conn, "logs-order", nil)
		if err == nil && data.State.Status == "exited" || time.Now().After(deadline) {
			break
		}
	}
	got := mustCall[logsResult](t, logs, `{"name":"logs-order"}`)
	want := logsResult{Logs: "out1\nerr1\nout2\nerr2\nout3\nerr3\n", Stdout: "out1\nout2\nout3\n", Stderr: "err1\nerr2\nerr3\n"}
	if got.Logs != want.Logs || got.Stdout != want.Stdout || got.Stderr != want.Stderr {
		t.Errorf("logs of a container that wrote out1, err1, out2, err2, ...:\n got %+v\nwant %+v", got, want)
	}
}
