package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/containers/podman/v5/pkg/specgen"

	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// These tests look at the Podman service directly (the bindings, not a
// worker), so that a worker's own clean-up cannot hide what is left.

// onService lists every container of the service, whoever made it.
func onService(t *testing.T, uri string) []types.ListContainer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := bindings.NewConnection(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	list, err := containers.List(conn, new(containers.ListOptions).WithAll(true))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func names(list []types.ListContainer) []string {
	var out []string
	for _, c := range list {
		out = append(out, strings.Join(c.Names, ",")+"("+c.State+")")
	}
	return out
}

// waitForContainers waits until the service holds exactly want containers.
func waitForContainers(t *testing.T, uri string, want int, within time.Duration) []types.ListContainer {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		list := onService(t, uri)
		if len(list) == want || time.Now().After(deadline) {
			return list
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually polls cond every 50 ms until it holds or within has passed,
// and says whether it held: tests wait on state, never on a fixed sleep
// that a loaded machine may outlast.
func eventually(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// runningOn counts the service's running containers, and those whose
// names start with prefix when it is not empty.
func runningOn(t *testing.T, uri, prefix string) int {
	t.Helper()
	n := 0
	for _, c := range onService(t, uri) {
		if c.State == "running" && (prefix == "" || len(c.Names) > 0 && strings.HasPrefix(c.Names[0], prefix)) {
			n++
		}
	}
	return n
}

// handMade creates and starts a container without the worker, with labels.
func handMade(t *testing.T, uri, name string, labels map[string]string) string {
	t.Helper()
	conn, err := bindings.NewConnection(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	sg := specgen.NewSpecGenerator(podmantest.BusyboxImage, false)
	sg.Name = name
	sg.Command = []string{"sleep", "600"}
	sg.Labels = labels
	sg.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	r, err := containers.CreateWithSpec(conn, sg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := containers.Start(conn, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// A worker SIGKILLed with runs in flight leaves their containers behind;
// the next worker of the same owner removes them before it answers its
// first call, so their names are free again. Containers handed over to the
// caller (create, auto_remove false) outlive a worker by design: they stay.
func TestDeadWorkersContainersAreRemovedByTheNext(t *testing.T) {
	svc := privateService(t)
	w1 := startWorker(t, "--socket", svc.URI)
	for i := range 3 {
		w1.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"run","params":%s}`, i,
			runParams(fmt.Sprintf(`"name":"orphan-%d","timeout":60`, i), "sleep", "50")))
	}
	if r, _ := w1.call(`"c"`, "create", `{"image":"localhost/busybox:latest","name":"kept-created","command":["sleep","600"]}`); r["error"] != nil {
		t.Fatalf("create: %v", r)
	}
	if r, _ := w1.call(`"k"`, "run", runParams(`"name":"kept-run","auto_remove":false`, "true")); r["error"] != nil {
		t.Fatalf("run with auto_remove false: %v", r)
	}
	if list := waitForContainers(t, svc.URI, 5, time.Minute); len(list) != 5 {
		t.Fatalf("want 3 runs in flight and 2 kept containers, the service holds %v", names(list))
	}
	_ = w1.cmd.Process.Signal(syscall.SIGKILL)
	<-w1.done
	if list := onService(t, svc.URI); len(list) != 5 {
		t.Fatalf("after SIGKILL of the worker the service holds %v; want the 5 containers this test is about", names(list))
	}

	w2 := startWorker(t, "--socket", svc.URI)
	var left []string
	for _, c := range onService(t, svc.URI) {
		left = append(left, c.Names...)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"kept-created", "kept-run"}) {
		t.Errorf("the next worker is ready, and the service holds %v; want only the two kept containers", left)
	}
	if r, _ := w2.call("1", "run", runParams(`"name":"orphan-0"`, "echo", "reused")); r["error"] != nil {
		t.Errorf("run reusing a dead worker's name: %v", r)
	}
	if !strings.Contains(w2.stderr.String(), "removed a container its worker left behind") {
		t.Errorf("the sweep is not logged; stderr:\n%s", w2.stderr.String())
	}
}

// Two live workers on one service: the second one's start removes nothing
// of the first's, whose run in flight finishes normally.
func TestLiveWorkersShareAService(t *testing.T) {
	svc := privateService(t)
	w1 := startWorker(t, "--socket", svc.URI)
	if r, _ := w1.call(`"c"`, "create", `{"image":"localhost/busybox:latest","name":"first-kept","command":["sleep","600"]}`); r["error"] != nil {
		t.Fatalf("create: %v", r)
	}
	w1.send(`{"jsonrpc":"2.0","id":"run","method":"run","params":` + runParams(`"name":"first-run","timeout":30`, "sh", "-c", "sleep 3; echo done") + `}`)
	waitForContainers(t, svc.URI, 2, time.Minute)

	w2 := startWorker(t, "--socket", svc.URI)
	if list := onService(t, svc.URI); len(list) != 2 {
		t.Errorf("a second live worker started; the service now holds %v, want both of the first worker's containers", names(list))
	}
	for {
		line, ok := w1.next(time.Minute)
		if !ok {
			t.Fatal("the first worker closed its output")
		}
		if strings.Contains(line, `"id":"run"`) {
			if !strings.Contains(line, `"stdout":"done\n"`) {
				t.Errorf("the first worker's run, with a second worker started beside it: %s", line)
			}
			break
		}
	}
	// Same owner: the second worker sees and may act on the first's.
	if r, _ := w2.call("1", "ps", `{"all":true}`); !strings.Contains(fmt.Sprint(r["result"]), "first-kept") {
		t.Errorf("ps on a worker of the same owner: %v", r)
	}
}

// Containers of another owner, or made without the worker, do not exist
// for it: every container method answers NotFound with the words it uses
// for a container that does not exist, and the container is untouched. An
// id prefix never selects a container; the full id does.
func TestContainersOutsideTheOwnerDoNotExist(t *testing.T) {
	svc := privateService(t)
	handMade(t, svc.URI, "handmade", nil)
	handMade(t, svc.URI, "other-owners", map[string]string{podman.LabelOwner: "someone-else"})
	w := startWorker(t, "--socket", svc.URI)

	if r, _ := w.call("1", "ps", `{"all":true}`); fmt.Sprint(r["result"]) != "[]" {
		t.Errorf("ps lists containers it does not own: %v", r)
	}
	calls := []struct{ method, params string }{
		{"start", `{"name":%q}`},
		{"stop", `{"name":%q,"timeout":0}`},
		{"logs", `{"name":%q}`},
		{"kill", `{"container":%q}`},
		{"rm", `{"container":%q,"force":true}`},
		{"exec", `{"name":%q,"command":["id"]}`},
		{"add_file", `{"name":%q,"dest_path":"/tmp/x","content":"x"}`},
		{"add_user", `{"name":%q,"username":"eve"}`},
	}
	for _, c := range calls {
		for _, name := range []string{"handmade", "other-owners", "no-such"} {
			r, _ := w.call(`"x"`, c.method, fmt.Sprintf(c.params, name))
			msg, data := errorData(t, r)
			if data["type"] != "NotFound" || msg != "no such container: "+name {
				t.Errorf("%s %s: got %q %v; want NotFound \"no such container: %s\", as for a container that does not exist", c.method, name, msg, data, name)
			}
		}
	}
	for _, ctr := range onService(t, svc.URI) {
		if ctr.State != "running" {
			t.Errorf("%v was acted on: now %s", ctr.Names, ctr.State)
		}
	}

	if r, _ := w.call(`"c"`, "create", `{"image":"localhost/busybox:latest","name":"mine","command":["sleep","600"]}`); r["error"] != nil {
		t.Fatalf("create: %v", r)
	}
	list, _ := w.call(`"p"`, "ps", `{}`)
	full := list["result"].([]any)[0].(map[string]any)["id"].(string)
	for _, ref := range []string{full[:12], full[:1], full[:63]} {
		r, _ := w.call(`"x"`, "exec", fmt.Sprintf(`{"name":%q,"command":["true"]}`, ref))
		if _, data := errorData(t, r); data["type"] != "NotFound" {
			t.Errorf("exec with the id prefix %q: %v; a prefix must never select a container", ref, r)
		}
	}
	if r, _ := w.call(`"full"`, "exec", fmt.Sprintf(`{"name":%q,"command":["true"]}`, full)); r["error"] != nil {
		t.Errorf("exec with the full id: %v", r)
	}

	// A worker of the other owner sees that owner's container, and no other.
	w2 := startWorker(t, "--socket", svc.URI, "--owner", "someone-else")
	r, _ := w2.call("1", "ps", `{"all":true}`)
	if got := fmt.Sprint(r["result"]); !strings.Contains(got, "other-owners") || strings.Contains(got, "mine") || strings.Contains(got, "handmade") {
		t.Errorf("ps with --owner someone-else: %v", got)
	}
}

// Podman killed under a run: the call fails, the container keeps running
// under conmon. Once Podman is back, the worker removes it at once, with
// no further call and without exiting.
func TestContainerOfAFailedRunIsRemovedWhenPodmanReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI)
	w.send(`{"jsonrpc":"2.0","id":"run","method":"run","params":` + runParams(`"name":"cut-off","timeout":60`, "sleep", "50") + `}`)
	waitForContainers(t, svc.URI, 1, time.Minute)
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	line, ok := w.next(time.Minute)
	if !ok || !strings.Contains(line, `"type":"Unavailable"`) {
		t.Fatalf("run with Podman killed under it: %q", line)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if list := onService(t, svc.URI); len(list) != 1 {
		t.Logf("just after the restart the service holds %v", names(list))
	}
	if list := waitForContainers(t, svc.URI, 0, 30*time.Second); len(list) != 0 {
		t.Errorf("30 s after Podman came back the failed run's container is still there: %v", names(list))
	}
	select {
	case err := <-w.done:
		t.Fatalf("the worker exited: %v", err)
	default:
	}
}

// A CLI process killed mid-run leaves its container holding the name; the
// next CLI command removes it when it connects, so the name works again.
func TestCLIProcessKilledMidRunLeavesNoName(t *testing.T) {
	svc := privateService(t)
	cmd := exec.Command(workerBin, "--socket", svc.URI, "run", podmantest.BusyboxImage, "--name", "cli-killed", "-c", "sleep 30", "--timeout", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if list := waitForContainers(t, svc.URI, 1, time.Minute); len(list) != 1 {
		t.Fatalf("the CLI's run did not start: %v", names(list))
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	out, err := exec.Command(workerBin, "--socket", svc.URI, "run", podmantest.BusyboxImage, "--name", "cli-killed", "-c", "echo again").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"stdout":"again\n"`) {
		t.Errorf("run --name cli-killed after a CLI process with that name was killed: %v\n%s", err, out)
	}
}

// An image that carries the worker's own labels (made by hand: a build
// through the worker refuses them) cannot make its containers pass for
// kept or prewarmed ones: the worker sets every label it reads on every
// container, so after a SIGKILL the next worker still removes the run's
// container, whose image said io.podman-worker.kept=true.
func TestImageLabelsDoNotPassForTheWorkers(t *testing.T) {
	svc := privateService(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM "+podmantest.BusyboxImage+"\nLABEL io.podman-worker.kept=true io.podman-worker.warm=true\n"), 0o644)
	if out, err := exec.Command("podman", "--url", svc.URI, "build", "-t", "localhost/labelled:1", dir).CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v %s", err, out)
	}
	w1 := startWorker(t, "--socket", svc.URI, "--shared-images", "localhost/labelled:1")
	w1.send(`{"jsonrpc":"2.0","id":1,"method":"run","params":{"image":"localhost/labelled:1","name":"labelled-run","command":["sleep","50"],"timeout":60}}`)
	list := waitForContainers(t, svc.URI, 1, time.Minute)
	if len(list) != 1 || list[0].Labels["io.podman-worker.kept"] != "false" || list[0].Labels["io.podman-worker.warm"] != "false" {
		t.Fatalf("the run's container: %v; want kept and warm set false by the worker", list)
	}
	_ = w1.cmd.Process.Signal(syscall.SIGKILL)
	<-w1.done
	startWorker(t, "--socket", svc.URI, "--shared-images", "localhost/labelled:1")
	if left := onService(t, svc.URI); len(left) != 0 {
		t.Errorf("after the next worker's start the service holds %v; want the dead worker's run removed", names(left))
	}
}

// A worker of the same owner started in another PID namespace (unshare
// --pid --fork --mount-proc) sees none of the first worker's processes in
// its /proc: it used to take the live worker's running container for a
// dead worker's and kill it (the live run answered 137). The pid label
// now names its namespace, and a worker does not judge pids of another.
func TestWorkerInAnotherPIDNamespaceKillsNothing(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	svc := privateService(t)
	live := startWorker(t, "--socket", svc.URI)
	live.send(`{"jsonrpc":"2.0","id":"long","method":"run","params":` + runParams(`"timeout":30`, "sh", "-c", "sleep 4; echo survived") + `}`)
	if list := waitForContainers(t, svc.URI, 1, time.Minute); len(list) != 1 {
		t.Fatalf("the live worker's run: %v", names(list))
	}
	other := startBinary(t, "unshare", "--pid", "--fork", "--mount-proc", workerBin, "--socket", svc.URI)
	if line, ok := other.next(time.Minute); !ok || !strings.Contains(line, `"worker.ready"`) {
		t.Fatalf("the worker in its own PID namespace: %q\n%s", line, other.stderr.String())
	}
	if r, _ := other.call(`"ping"`, "ping", ""); r["result"] != "Pong" {
		t.Fatalf("ping: %v", r)
	}
	line, ok := live.next(time.Minute)
	if !ok || !strings.Contains(line, `"id":"long"`) || !strings.Contains(line, `"stdout":"survived\n"`) {
		t.Errorf("the live worker's run after another worker started in another PID namespace: %s", line)
	}
}
