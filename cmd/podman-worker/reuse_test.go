package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reuseScript is a function that either makes every kind of mess an
// invocation could leave for the next one ("dirty"), or reports, from
// inside the instance, everything such a mess would show in ("look").
const reuseScript = `read phase
if [ "$phase" = dirty ]; then
  echo x > /tmp/a; mkdir -p /var/tmp/d/e; echo y > /var/tmp/d/e/f; chmod 000 /var/tmp/d
  echo z > /run/r; echo s > /dev/shm/s; echo dev > /dev/evil 2>/dev/null
  echo "6.6.6.6 evil" >> /etc/hosts 2>/dev/null
  export SNEAKY=1
  setsid sh -c 'while true; do sleep 1; done' </dev/null >/dev/null 2>&1 &
  sleep 300 </dev/null >/dev/null 2>&1 &
  kill -TERM 1; kill -INT 1; kill -HUP 1; kill -USR1 1
  if cat /proc/1/fd/0 </dev/null >/dev/null 2>&1; then echo channel:readable; else echo channel:unreadable; fi
  if echo forged >/proc/1/fd/1 2>/dev/null; then echo channel:writable; else echo channel:unwritable; fi
  echo "made: $(ls -A /tmp /var/tmp /run /dev/shm | tr '\n' ' ')"
  sleep 0.2; echo "left: $(ps -o comm | grep -c '^sleep$')"
  echo dirtied
else
  echo "scratch: $(ls -A /tmp /var/tmp /run /dev/shm /dev/mqueue 2>&1 | tr '\n' ' ')"
  echo "dev: $(ls -A /dev | tr '\n' ' ')"
  echo "hosts: $(md5sum </etc/hosts)"
  echo "ipc: $(cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem | grep -vc '^ *key')"
  echo "env: ${SNEAKY:-unset} $(env | sort | md5sum)"
  echo "orphans: $(ps -o ppid,pid,comm | awk -v me=$$ '$1 == 1 && $2 != me {print $3}' | tr '\n' ' ')"
fi
`

func reuseRun(input string, extra ...string) string {
	p := fmt.Sprintf(`{"image":"localhost/busybox:latest","command":["sh","-c",%q],"input":%q,"reuse":true`, reuseScript, input+"\n")
	for _, e := range extra {
		p += "," + e
	}
	return p + "}"
}

// From inside the instance: an invocation finds none of what the one
// before it left, whatever it tried, and cannot reach the runner.
func TestReusedInvocationsStartClean(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	look1 := result(t, mustCall(w, `"look1"`, "run", reuseRun("look")))
	dirty := result(t, mustCall(w, `"dirty"`, "run", reuseRun("dirty")))
	look2 := result(t, mustCall(w, `"look2"`, "run", reuseRun("look")))
	t.Logf("a fresh instance:\n%s\nthe dirty invocation:\n%s\nafter it:\n%s", look1["stdout"], dirty["stdout"], look2["stdout"])
	if look1["start"] != "cold" || dirty["start"] != "reused" || look2["start"] != "reused" {
		t.Fatalf("starts %v, %v, %v: want cold, reused, reused", look1["start"], dirty["start"], look2["start"])
	}
	if dirty["container_id"] != look1["container_id"] || look2["container_id"] != look1["container_id"] {
		t.Fatalf("three invocations of one spec were served by more than one instance")
	}
	out := fmt.Sprint(dirty["stdout"])
	// The mess was made (so the clean look after it means something)...
	for _, want := range []string{"made: /dev/shm: s  /run: r  /tmp: a  /var/tmp: d ", "dirtied"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dirty invocation did not report %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "left: 0") {
		t.Errorf("the dirty invocation's background processes did not start:\n%s", out)
	}
	// ...and the runner's channel stayed out of its reach.
	if !strings.Contains(out, "channel:unreadable") || !strings.Contains(out, "channel:unwritable") {
		t.Errorf("the function reached the runner's channel (/proc/1/fd):\n%s", out)
	}
	if look2["stdout"] != look1["stdout"] {
		t.Errorf("the invocation after the dirty one sees a different instance:\nfresh: %s\nafter: %s", look1["stdout"], look2["stdout"])
	}
	for _, want := range []string{"ipc: 0", "env: unset", "orphans: \n"} {
		if !strings.Contains(fmt.Sprint(look2["stdout"]), want) {
			t.Errorf("after the dirty invocation the instance does not show %q:\n%s", want, look2["stdout"])
		}
	}
}

// Each discard reason ends the instance: the next run of the spec starts
// a new one; different specs never share one.
func TestReusedInstanceDiscards(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	run := func(id string, extra ...string) map[string]any {
		p := `{"image":"localhost/busybox:latest","command":["sh","-c","cat; echo ran"],"reuse":true`
		for _, e := range extra {
			p += "," + e
		}
		r, _ := w.call(`"`+id+`"`, "run", p+"}")
		return r
	}
	first := result(t, run("a"))
	again := result(t, run("b"))
	if again["container_id"] != first["container_id"] || again["start"] != "reused" {
		t.Fatalf("the second run of a spec was not served by its instance: %v then %v", first, again)
	}
	// A timeout: the instance is killed with the function.
	slow := `{"image":"localhost/busybox:latest","command":["sh","-c","cat; echo ran; sleep 30"],"reuse":true,"timeout":1}`
	r, _ := w.call(`"slow1"`, "run", slow)
	msg, data := errorData(t, r)
	if data["type"] != "Timeout" || data["stdout"] != "ran\n" {
		t.Fatalf("a reused run past its timeout: %s %v", msg, data)
	}
	r, _ = w.call(`"slow2"`, "run", slow)
	_, data2 := errorData(t, r)
	if data2["container_id"] == data["container_id"] || data2["start"] != "cold" {
		t.Errorf("after a timeout the instance served again: %v then %v", data, data2)
	}
	// The memory limit: an OOM kill, reported as for a cold run.
	hog := `{"image":"localhost/busybox:latest","command":["sh","-c","cat; head -c 64m /dev/zero | tail > /dev/null"],"reuse":true,"memory":"20m"}`
	r, _ = w.call(`"oom1"`, "run", hog)
	msg, data = errorData(t, r)
	if data["type"] != "ExecutionFailed" || data["exit_code"] != float64(137) || data["oom_killed"] != true {
		t.Errorf("a reused run past its memory: %s %v", msg, data)
	}
	r, _ = w.call(`"oom2"`, "run", hog)
	_, data2 = errorData(t, r)
	if data2["container_id"] == data["container_id"] {
		t.Errorf("after an OOM kill the instance served again")
	}
	// Another spec (one env var more) gets an instance of its own.
	other := result(t, run("other", `"env":["X=1"]`))
	if other["container_id"] == first["container_id"] {
		t.Errorf("two specs shared an instance")
	}
	m := result(t, mustCall(w, `"m"`, "metrics", ""))
	inst, _ := m["instances"].(map[string]any)
	d, _ := inst["discards"].(map[string]any)
	if d["timeout"] != float64(2) || d["oom"] != float64(2) || inst["hits"].(float64) < 1 {
		t.Errorf("instance metrics: %v", inst)
	}
}

// Concurrent runs of one spec use at most --max-instances instances and
// wait their turn; all of them are served.
func TestReusedInstancesCeiling(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--max-instances", "2", "--max-workers", "8")
	const n = 12
	for i := 0; i < n; i++ {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"run","params":{"image":"localhost/busybox:latest","command":["sh","-c","sleep 0.2; echo ok"],"reuse":true}}`, i))
	}
	ids := make(chan string, n)
	for i := 0; i < n; i++ {
		line, ok := w.next(2 * time.Minute)
		if !ok {
			t.Fatalf("the worker stopped answering after %d of %d runs", i, n)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if res, ok := r["result"].(map[string]any); ok && res["stdout"] == "ok\n" {
			ids <- fmt.Sprint(res["container_id"])
		} else {
			t.Errorf("run %v: %v", r["id"], r)
		}
	}
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) > 2 {
		t.Errorf("12 concurrent runs used %d instances, above --max-instances 2", len(seen))
	}
	m := result(t, mustCall(w, `"m"`, "metrics", ""))
	if inst, _ := m["instances"].(map[string]any); inst["live"].(float64) > 2 {
		t.Errorf("instances: %v", inst)
	}
	// 0 turns reuse off: the same run is served cold.
	w0 := startWorker(t, "--socket", service.URI, "--max-instances", "0")
	for i := 0; i < 2; i++ {
		if res := result(t, mustCall(w0, fmt.Sprint(i), "run", `{"image":"localhost/busybox:latest","command":["echo","x"],"reuse":true}`)); res["start"] != "cold" {
			t.Errorf("with --max-instances 0 a run was served %v", res["start"])
		}
	}
}

// An image with nothing but one static binary (no shell, no libc) runs on
// an instance, and the instances are gone from Podman when the worker ends.
func TestReusedScratchImageAndCleanExit(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	if out, err := exec.Command("cp", busybox, filepath.Join(tree, "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	tarball := filepath.Join(t.TempDir(), "img.tar")
	if out, err := exec.Command("tar", "-C", tree, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	const image = "localhost/scratch-one-binary:1"
	if out, err := exec.Command("podman", "--url", service.URI, "import", tarball, image).CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v %s", err, out)
	}
	defer exec.Command("podman", "--url", service.URI, "rmi", "-f", image).Run()
	w := startWorker(t, "--socket", service.URI, "--shared-images", os.Getenv("SHARED_IMAGES")+","+image)
	var ids []string
	for i := 0; i < 3; i++ {
		res := result(t, mustCall(w, fmt.Sprint(i), "run", `{"image":"`+image+`","command":["/busybox","echo","from scratch"],"reuse":true}`))
		if res["stdout"] != "from scratch\n" {
			t.Fatalf("run %d on a scratch image: %v", i, res)
		}
		ids = append(ids, fmt.Sprint(res["container_id"]))
	}
	if ids[1] != ids[0] || ids[2] != ids[0] {
		t.Errorf("the scratch image's runs were not served by one instance: %v", ids)
	}
	if code := w.closeAndWait(time.Minute); code != 0 {
		t.Fatalf("the worker exited %d", code)
	}
	out, err := exec.Command("podman", "--url", service.URI, "ps", "-a", "--format", "{{.ID}}", "--filter", "id="+ids[0]).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("the instance is still in Podman after the worker exited: %q %v", out, err)
	}
}

// prewarm with reuse starts instances ahead: the first run is served by
// one ("reused"), and count 0 removes them.
func TestPrewarmInstances(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--max-instances", "3")
	spec := `"image":"localhost/busybox:latest","command":["echo","warm"]`
	if r := result(t, mustCall(w, `"p"`, "prewarm", `{`+spec+`,"reuse":true,"count":2}`)); r["warm"] != float64(2) {
		t.Fatalf("prewarm reuse count 2: %v", r)
	}
	if r := result(t, mustCall(w, `"r"`, "run", `{`+spec+`,"reuse":true}`)); r["start"] != "reused" || r["stdout"] != "warm\n" {
		t.Errorf("the first run after prewarm: %v", r)
	}
	r, _ := w.call(`"big"`, "prewarm", `{`+spec+`,"reuse":true,"count":4}`)
	if _, data := errorData(t, r); data["type"] != "Forbidden" || data["field"] != "count" {
		t.Errorf("prewarm past --max-instances: %v", r)
	}
	if r := result(t, mustCall(w, `"d"`, "prewarm", `{`+spec+`,"reuse":true,"count":0}`)); r["warm"] != float64(0) {
		t.Errorf("prewarm reuse count 0: %v", r)
	}
	m := result(t, mustCall(w, `"m"`, "metrics", ""))
	if inst, _ := m["instances"].(map[string]any); inst["live"] != float64(0) {
		t.Errorf("after count 0: %v", inst)
	}
}

// An instance outlives no worker: killed with SIGKILL, the worker leaves
// its idle instance running, and the next worker of the owner removes it
// when it starts, as any container of a dead worker.
func TestInstancesSweptAfterACrash(t *testing.T) {
	svc := privateService(t)
	w1 := startWorker(t, "--socket", svc.URI)
	res := result(t, mustCall(w1, "1", "run", `{"image":"localhost/busybox:latest","command":["echo","x"],"reuse":true}`))
	if list := onService(t, svc.URI); len(list) != 1 || list[0].ID != res["container_id"] {
		t.Fatalf("the idle instance is not the one container on the service: %v", names(list))
	}
	// A second instance is in the middle of an invocation when the worker
	// dies: its function must not outlive the sweep either.
	marker := fmt.Sprintf("pw-crash-%d", time.Now().UnixNano())
	w1.send(`{"jsonrpc":"2.0","id":2,"method":"run","params":{"image":"localhost/busybox:latest","command":["sh","-c","echo started; sleep 50; : ` + marker + `"],"reuse":true,"stream":true,"timeout":60}}`)
	if line, _ := w1.next(time.Minute); !strings.Contains(line, `"run.output"`) || !strings.Contains(line, "started") {
		t.Fatalf("sent a reused run printing 'started'; first line back %q, want its run.output", line)
	}
	if n := len(onService(t, svc.URI)); n != 2 || len(processesWith(marker)) == 0 {
		t.Fatalf("mid-invocation: %d containers and processes %v; want 2 and the function running", n, processesWith(marker))
	}
	_ = w1.cmd.Process.Signal(syscall.SIGKILL)
	<-w1.done
	startWorker(t, "--socket", svc.URI)
	if left := onService(t, svc.URI); len(left) != 0 {
		t.Errorf("after the next worker's start the service holds %v; want the dead worker's instances removed", names(left))
	}
	if left := processesWith(marker); len(left) != 0 {
		t.Errorf("after the sweep, the busy instance's function still runs on the host: pids %v", left)
	}
}

// processesWith lists the host's processes whose command line holds s.
func processesWith(s string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

// When no instance can be started for a spec (here a --runner that cannot
// run: what a corrupt binary or a full disk during the copy come to), a
// run with reuse is served cold, with the cold run's answer, and leaves
// no instance behind.
func TestReuseServedColdWhenNoInstanceStarts(t *testing.T) {
	svc := privateService(t)
	broken := filepath.Join(t.TempDir(), "runner")
	if err := os.WriteFile(broken, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--socket", svc.URI, "--runner", broken)
	sent := `{"image":"localhost/busybox:latest","command":["echo","served"],"reuse":true}`
	for i := range 2 {
		res := result(t, mustCall(w, fmt.Sprint(i), "run", sent))
		if res["start"] != "cold" || res["stdout"] != "served\n" {
			t.Errorf("sent %s with a runner that cannot run; got start %v, stdout %q; want a cold run's answer", sent, res["start"], res["stdout"])
		}
	}
	// The second run did not try again: one start failed, for both runs.
	m := result(t, mustCall(w, `"m"`, "metrics", ""))
	if inst, _ := m["instances"].(map[string]any); inst["live"] != float64(0) || inst["misses"] != float64(1) {
		t.Errorf("instances after two runs whose instance cannot start: %v; want none live and one start tried", inst)
	}
	if !eventually(20*time.Second, func() bool { return len(onService(t, svc.URI)) == 0 }) {
		t.Errorf("the service still holds %v; want the failed instances and the cold runs removed", names(onService(t, svc.URI)))
	}
}
