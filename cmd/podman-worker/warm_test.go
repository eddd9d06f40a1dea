package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// warmSpec is a function that reports what it sees from inside (the
// sandbox) and whether an earlier invocation left a file behind.
const warmSpec = `"image":"localhost/busybox:latest","command":"cat /tmp/marker 2>/dev/null || echo absent; echo left > /tmp/marker; grep -E 'CapEff|NoNewPrivs' /proc/self/status; touch /probe 2>&1 | cut -d: -f2-; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"`

func metricsOf(t *testing.T, w *worker) map[string]any {
	t.Helper()
	r, _ := w.call(`"metrics"`, "metrics", "")
	return result(t, r)
}

func warmPool(t *testing.T, w *worker) map[string]any {
	t.Helper()
	pools := metricsOf(t, w)["warm"].(map[string]any)["pools"].([]any)
	if len(pools) != 1 {
		t.Fatalf("want one prewarm pool, metrics says %v", pools)
	}
	return pools[0].(map[string]any)
}

// Prewarmed containers serve one run each, with everything a cold run's
// container has (the sandbox seen from inside is the same); a name works;
// callers never see an idle one; the ceiling holds; draining removes them.
func TestPrewarmedRuns(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI, "--max-warm", "3")

	cold, _ := w.call(`"cold"`, "run", "{"+warmSpec+"}")
	if r, _ := w.call(`"prewarm"`, "prewarm", "{"+warmSpec+`,"count":2}`); fmt.Sprint(result(t, r)["warm"]) != "2" {
		t.Fatalf("prewarm count 2: %v", r)
	}
	if list := onService(t, svc.URI); len(list) != 2 {
		t.Errorf("after prewarm count 2 the service holds %v", names(list))
	}
	if r, _ := w.call(`"ps"`, "ps", `{"all":true}`); fmt.Sprint(r["result"]) != "[]" {
		t.Errorf("ps shows prewarmed containers no caller asked for: %v", r["result"])
	}

	for i := range 4 {
		r, _ := w.call(fmt.Sprintf(`"warm%d"`, i), "run", "{"+warmSpec+"}")
		res := result(t, r)
		if res["stdout"] != result(t, cold)["stdout"] {
			t.Errorf("run %d from the pool saw %q; a cold run of the same spec saw %q", i, res["stdout"], result(t, cold)["stdout"])
		}
		if !strings.HasPrefix(fmt.Sprint(res["stdout"]), "absent\n") {
			t.Errorf("run %d found the file an earlier run wrote: %q", i, res["stdout"])
		}
		time.Sleep(300 * time.Millisecond) // the pool refills in the background
	}
	if p := warmPool(t, w); p["hits"].(float64) < 1 || p["target"] != float64(2) {
		t.Errorf("after 4 runs of the prewarmed spec: %v; want hits", p)
	}
	r, _ := w.call(`"named"`, "run", "{"+warmSpec+`,"name":"warm-named"}`)
	if res := result(t, r); res["name"] != "warm-named" {
		t.Errorf("run with a name from the pool: %v", res)
	}

	r, _ = w.call(`"over"`, "prewarm", `{"image":"localhost/busybox:latest","command":["true"],"count":2}`)
	if _, data := errorData(t, r); data["type"] != "Forbidden" || data["field"] != "count" {
		t.Errorf("2 more prewarmed containers with --max-warm 3 and 2 asked for: %v", r)
	}
	// A spec of which no container can be made is refused, and not kept.
	r, _ = w.call(`"noimage"`, "prewarm", `{"image":"localhost/no-such-image:latest","count":1}`)
	if _, data := errorData(t, r); data["type"] != "NotFound" {
		t.Errorf("prewarm of a missing image: %v", r)
	}
	if n := len(metricsOf(t, w)["warm"].(map[string]any)["pools"].([]any)); n != 1 {
		t.Errorf("after a refused prewarm there are %d pools, want the 1 of before", n)
	}
	if r, _ := w.call(`"drain"`, "prewarm", "{"+warmSpec+`,"count":0}`); fmt.Sprint(result(t, r)["warm"]) != "0" {
		t.Errorf("prewarm count 0: %v", r)
	}
	if list := waitForContainers(t, svc.URI, 0, 30*time.Second); len(list) != 0 {
		t.Errorf("after draining, the service holds %v", names(list))
	}
}

// Prewarmed containers are the worker's own: gone after its exit, and
// after a crash gone once the next worker of the owner connects.
func TestPrewarmedContainersDoNotOutliveTheWorker(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI)
	w.call(`"p"`, "prewarm", `{"image":"localhost/busybox:latest","command":["true"],"count":2}`)
	if code := w.closeAndWait(time.Minute); code != 0 {
		t.Errorf("exit %d", code)
	}
	if list := onService(t, svc.URI); len(list) != 0 {
		t.Errorf("after the worker's exit the service holds %v", names(list))
	}

	w = startWorker(t, "--socket", svc.URI)
	w.call(`"p"`, "prewarm", `{"image":"localhost/busybox:latest","command":["true"],"count":2}`)
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
	if list := onService(t, svc.URI); len(list) != 2 {
		t.Fatalf("after SIGKILL the service holds %v; want the 2 prewarmed containers", names(list))
	}
	startWorker(t, "--socket", svc.URI)
	if list := onService(t, svc.URI); len(list) != 0 {
		t.Errorf("the next worker is ready and the service holds %v", names(list))
	}
}

// A prewarmed container holds its image: rmi still works at once (the pool
// lets go of them first), and health then says the pool cannot refill.
func TestRmiOfAPrewarmedImage(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI, "--build-roots", repoRoot+"/testdata/build")
	if r, _ := w.call(`"b"`, "build", fmt.Sprintf(`{"context":%q,"tag":"warm-image:latest"}`, repoRoot+"/testdata/build/hello")); r["error"] != nil {
		t.Fatalf("build: %v", r)
	}
	if r, _ := w.call(`"p"`, "prewarm", `{"image":"warm-image:latest","count":2}`); fmt.Sprint(result(t, r)["warm"]) != "2" {
		t.Fatalf("prewarm: %v", r)
	}
	if r, _ := w.call(`"rmi"`, "rmi", `{"image":"warm-image:latest"}`); r["error"] != nil {
		t.Errorf("rmi of a prewarmed image: %v", r)
	}
	var health map[string]any
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r, _ := w.call(`"h"`, "health", "")
		health = result(t, r)
		if health["warm_errors"] != nil {
			break
		}
	}
	b, _ := json.Marshal(health["warm_errors"])
	if !strings.Contains(string(b), "warm-image") {
		t.Errorf("health after the pool's image was removed: %v", health)
	}
}
