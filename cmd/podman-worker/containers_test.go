package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runParams builds run params for the busybox image.
func runParams(extra string, argv ...string) string {
	cmd, _ := json.Marshal(argv)
	p := fmt.Sprintf(`{"image":"localhost/busybox:latest","command":%s`, cmd)
	if extra != "" {
		p += "," + extra
	}
	return p + "}"
}

func result(t *testing.T, r map[string]any) map[string]any {
	t.Helper()
	res, ok := r["result"].(map[string]any)
	if !ok {
		t.Fatalf("want a result, got %v", r)
	}
	return res
}

func errorData(t *testing.T, r map[string]any) (msg string, data map[string]any) {
	t.Helper()
	e, ok := r["error"].(map[string]any)
	if !ok {
		t.Fatalf("want an error, got %v", r)
	}
	data, _ = e["data"].(map[string]any)
	return fmt.Sprint(e["message"]), data
}

// What the function sees from inside: the limits are real cgroup limits,
// the network is only lo, and env, workdir, user and mounts arrive.
func TestRunLimitsSeenFromInside(t *testing.T) {
	host := t.TempDir()
	w := startWorker(t, "--socket", service.URI, "--mount-roots", host, "--allow-named-volumes")
	if err := os.WriteFile(filepath.Join(host, "request.json"), []byte(`{"n":41}`), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
echo "net=$(ls /sys/class/net | tr '\n' ' ')"
echo "env=$GREETING pwd=$(pwd) uid=$(id -u)"
echo "nnp=$(grep NoNewPrivs /proc/self/status | tr -d ' \t')"
echo "request=$(cat /data/request.json)"
echo "volume=$(ls -d /fn)"
echo '{"statusCode":200}' > /data/result.json`
	params := runParams(fmt.Sprintf(`"env":{"GREETING":"hello"},"workdir":"/tmp","user":"0","mounts":[%q,"functions_data:/fn:Z,rshared"]`, host+":/data:Z,rprivate"), "/bin/sh", "-c", script)
	r, _ := w.call("1", "run", params)
	out := fmt.Sprint(result(t, r)["stdout"])
	for _, want := range []string{
		"mem=20971520", "quota=50000 period=100000", "pids=128", "net=lo ", "env=hello pwd=/tmp uid=0",
		"nnp=NoNewPrivs:1", `request={"n":41}`, "volume=/fn",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	got, err := os.ReadFile(filepath.Join(host, "result.json"))
	if err != nil || strings.TrimSpace(string(got)) != `{"statusCode":200}` {
		t.Errorf("the result file written through the mount: %q, %v", got, err)
	}

	r, _ = w.call("2", "run", runParams(`"memory":"64m","cpus":1.5,"pids_limit":10,"user":"65534"`, "/bin/sh", "-c",
		`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; id -u`))
	if got := fmt.Sprint(result(t, r)["stdout"]); got != "67108864\n150000\n10\n65534\n" {
		t.Errorf("asked for 64m, 1.5 cpus, 10 pids, user 65534; saw %q", got)
	}
}

func TestRunResultShape(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	r, _ := w.call("1", "run", runParams(`"name":"shape-test"`, "/bin/sh", "-c", `echo '{"statusCode":200,"body":{"result":"success"}}'; echo oops >&2`))
	res := result(t, r)
	body, _ := json.Marshal(res["stdout"])
	if string(body) != `{"body":{"result":"success"},"statusCode":200}` {
		t.Errorf("stdout should be the parsed JSON the function printed, got %s", body)
	}
	if res["stderr"] != "oops\n" || res["name"] != "shape-test" || res["exit_code"] != float64(0) || res["auto_remove"] != true || res["status"] != "exited" {
		t.Errorf("result: %v", res)
	}
	r, _ = w.call("2", "run", runParams("", "echo", "plain text"))
	if got := result(t, r)["stdout"]; got != "plain text\n" {
		t.Errorf("non-JSON stdout should come back as text, got %#v", got)
	}
	waitGone(t, w, "shape-test")
}

func TestRunFailures(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)

	r, _ := w.call("1", "run", runParams(`"name":"fails"`, "/bin/sh", "-c", "echo partial; echo broken >&2; exit 3"))
	msg, data := errorData(t, r)
	if msg != "Container execution failed" || data["type"] != "ExecutionFailed" || data["exit_code"] != float64(3) ||
		data["stdout"] != "partial\n" || data["stderr"] != "broken\n" || data["container_id"] == "" {
		t.Errorf("exit 3: got %q %v", msg, data)
	}
	waitGone(t, w, "fails")

	// 20 MB of memory and a function that wants 60: the commonest failure.
	r, _ = w.call("2", "run", runParams(`"name":"hungry"`, "/bin/sh", "-c", `x=$(head -c 60000000 /dev/zero | tr '\0' a); echo ${#x}`))
	msg, data = errorData(t, r)
	if data["oom_killed"] != true || !strings.Contains(msg, "ran out of memory") || !strings.Contains(msg, "20m") {
		t.Errorf("out of memory: got %q %v", msg, data)
	}
	waitGone(t, w, "hungry")

	r, _ = w.call("3", "run", `{"image":"localhost/no-such-image:latest","command":"true","name":"noimage"}`)
	if _, data := errorData(t, r); data["type"] != "NotFound" {
		t.Errorf("missing image: %v", data)
	}
	r, _ = w.call("4", "run", runParams(`"name":"nostart"`, "/no/such/program"))
	if _, data := errorData(t, r); data["type"] != "ExecutionFailed" || data["exit_code"] != float64(127) {
		t.Errorf("a command that does not exist: %v, want ExecutionFailed with exit 127 as podman run gives", r)
	}
	waitGone(t, w, "nostart")
	r, _ = w.call("5", "run", runParams(`"name":"noexec"`, "/etc/passwd"))
	if _, data := errorData(t, r); data["type"] != "ExecutionFailed" || data["exit_code"] != float64(126) {
		t.Errorf("a command that is not executable: %v, want exit 126", r)
	}
	waitGone(t, w, "noexec")
}

// A timeout kills within a second of its deadline and leaves nothing behind.
// The deadline counts from the container's start, so the margin is
// measured from when Podman first lists it running: making the container
// on a loaded machine may take longer than the timeout itself.
func TestRunTimeout(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	w.send(`{"jsonrpc":"2.0","id":1,"method":"run","params":` + runParams(`"name":"sleeper","timeout":1`, "sleep", "30") + `}`)
	if !eventually(time.Minute, func() bool { return runningOn(t, service.URI, "sleeper") == 1 }) {
		t.Fatal("the container never ran")
	}
	started := time.Now() // at or after its real start
	line, ok := w.next(time.Minute)
	took := time.Since(started)
	var r map[string]any
	if !ok || json.Unmarshal([]byte(line), &r) != nil {
		t.Fatalf("no answer: %q", line)
	}
	msg, data := errorData(t, r)
	if msg != "Container 'sleeper' exceeded timeout of 1s and was killed" || data["type"] != "Timeout" || data["status"] != float64(408) {
		t.Errorf("got %q %v", msg, data)
	}
	if took > 2*time.Second {
		t.Errorf("a 1 s timeout answered %v after the container was seen running; want within a second of the deadline", took)
	}
	waitGone(t, w, "sleeper")
}

// $/cancelRequest on a run kills and removes its container.
func TestRunCancel(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	w.send(`{"jsonrpc":"2.0","id":"long","method":"run","params":` + runParams(`"name":"cancelled","timeout":60`, "sleep", "60") + `}`)
	waitRunning(t, w, "cancelled")
	start := time.Now()
	w.send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"long"}}`)
	line, _ := w.next(30 * time.Second)
	if !strings.Contains(line, `"id":"long"`) || !strings.Contains(line, `-32800`) {
		t.Fatalf("cancelled run answered %s", line)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the cancel took %v", took)
	}
	waitGone(t, w, "cancelled")
}

// 20 runs at once with 10 workers: every call gets its own output.
func TestConcurrentRuns(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--max-workers", "10")
	const n = 20
	for i := 0; i < n; i++ {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"run","params":%s}`, i, runParams("", "/bin/sh", "-c", fmt.Sprintf(`echo '{"n":%d}'; echo err%d >&2`, i, i))))
	}
	seen := map[int]bool{}
	for len(seen) < n {
		line, ok := w.next(2 * time.Minute)
		if !ok {
			t.Fatal("output closed")
		}
		var r struct {
			ID     int `json:"id"`
			Result struct {
				Stdout struct{ N int } `json:"stdout"`
				Stderr string          `json:"stderr"`
			} `json:"result"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Error != nil {
			t.Fatalf("bad reply %s", line)
		}
		if r.Result.Stdout.N != r.ID || r.Result.Stderr != fmt.Sprintf("err%d\n", r.ID) || seen[r.ID] {
			t.Errorf("id %d got someone else's output (or twice): %s", r.ID, line)
		}
		seen[r.ID] = true
	}
	// The worker waits for its background removals before it exits.
	exitsLeavingNothing(t, w, service.URI, "pw-")
}

func TestRunOutputIsCapped(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--max-output-bytes", "1k")
	r, _ := w.call("1", "run", runParams("", "/bin/sh", "-c", `head -c 5000 /dev/zero | tr '\0' x; head -c 10 /dev/zero | tr '\0' y >&2`))
	res := result(t, r)
	if s := fmt.Sprint(res["stdout"]); len(s) != 1024 {
		t.Errorf("stdout kept %d bytes, want the 1k cap", len(s))
	}
	if tr := fmt.Sprint(res["truncated"]); tr != "[stdout]" || res["stderr"] != "yyyyyyyyyy" {
		t.Errorf("truncated = %v, stderr = %v", tr, res["stderr"])
	}
}

// Every bad input gets its error naming the field, and the worker goes on.
func TestRunBadParams(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--network-modes", "none,bridge")
	tests := []struct {
		params, kind, field string
	}{
		{`{"command":"true"}`, "BadRequest", "image"},
		{runParams(`"memory":"20x"`, "true"), "BadRequest", "memory"},
		{runParams(`"memory":"0"`, "true"), "BadRequest", "memory"},
		{runParams(`"memory":"64m","memory_swap":"20m"`, "true"), "BadRequest", "memory_swap"},
		{runParams(`"cpus":-1`, "true"), "BadRequest", "cpus"},
		{runParams(`"cpus":"lots"`, "true"), "BadRequest", "cpus"},
		{runParams(`"timeout":0`, "true"), "BadRequest", "timeout"},
		{runParams(`"memory":"64g"`, "true"), "Forbidden", "memory"},
		{runParams(`"cpus":64`, "true"), "Forbidden", "cpus"},
		{runParams(`"timeout":86400`, "true"), "Forbidden", "timeout"},
		{runParams(`"pids_limit":100000`, "true"), "Forbidden", "pids_limit"},
		{runParams(`"network_mode":"host"`, "true"), "Forbidden", "network_mode"},
		{runParams(`"ports":["8080:80"]`, "true"), "BadRequest", "ports"},
		{runParams(`"network_mode":"bridge","ports":["80"]`, "true"), "BadRequest", "ports"},
		{runParams(`"mounts":["/tmp:relative"]`, "true"), "BadRequest", "mounts"},
		{runParams(`"mounts":["/tmp:/x:bogus"]`, "true"), "BadRequest", "mounts"},
		{runParams(`"volumes":["no-colon"]`, "true"), "BadRequest", "volumes"},
		{runParams(`"name":"bad name!"`, "true"), "BadRequest", "name"},
		{runParams(`"env":["NOEQUALS"]`, "true"), "BadRequest", "env"},
		{runParams(`"privileged":true`, "true"), "BadRequest", "privileged"},
		{`{"image":"localhost/busybox:latest","command":""}`, "BadRequest", "command"},
		{`{"image":"localhost/busybox:latest","command":[]}`, "BadRequest", "command"},
	}
	for i, tt := range tests {
		r, _ := w.call(fmt.Sprint(i), "run", tt.params)
		_, data := errorData(t, r)
		if data["type"] != tt.kind || data["field"] != tt.field {
			t.Errorf("sent %s: got %v, want %s naming %q", tt.params, r["error"], tt.kind, tt.field)
		}
	}
	if r, _ := w.call(`"last"`, "ping", ""); r["result"] != "Pong" {
		t.Errorf("the worker stopped serving after bad input: %v", r)
	}
}

// waitGone polls ps --all until no container has the name (removal runs
// after the reply, off the caller's path).
func waitGone(t *testing.T, w *worker, name string) {
	t.Helper()
	waitListed(t, w, name, `{"all":true}`, false)
}

// waitRunning polls ps until a running container has the name.
func waitRunning(t *testing.T, w *worker, name string) {
	t.Helper()
	waitListed(t, w, name, "", true)
}

func waitListed(t *testing.T, w *worker, name, psParams string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		r, _ := w.call(fmt.Sprintf(`"ps-%s-%d"`, name, i), "ps", psParams)
		if strings.Contains(fmt.Sprint(r["result"]), "name:"+name+" ") == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s listed=%v after 10 s, want %v: %v", name, !want, want, r["result"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunEntrypointAndVolumes(t *testing.T) {
	host := t.TempDir()
	w := startWorker(t, "--socket", service.URI, "--mount-roots", host)
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := w.call("1", "run", fmt.Sprintf(`{"image":"localhost/busybox:latest","entrypoint":["/bin/cat"],"command":["/in/in.txt"],"volumes":[%q]}`, host+":/in:ro"))
	if got := result(t, r)["stdout"]; got != "from the host" {
		t.Errorf("entrypoint cat with a read-only volume: stdout %q", got)
	}
	r, _ = w.call("2", "run", fmt.Sprintf(`{"image":"localhost/busybox:latest","command":"echo x > /in/new.txt","volumes":[%q]}`, host+":/in:ro"))
	if _, data := errorData(t, r); data["type"] != "ExecutionFailed" {
		t.Errorf("writing to a read-only volume should fail: %v", r)
	}
}

// ports publish a container port on the host (bridge network only); the
// site lives in /tmp, since the root filesystem is read-only.
func TestCreateWithPublishedPort(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--network-modes", "none,bridge")
	r, _ := w.call("1", "create", `{"image":"localhost/busybox:latest","name":"web","network_mode":"bridge","ports":["127.0.0.1:18088:8080"],`+
		`"command":["/bin/sh","-c","mkdir -p /tmp/www && echo served > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]}`)
	result(t, r)
	defer w.call("9", "rm", `{"container":"web","force":true}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:18088/index.html")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "served\n" {
				t.Errorf("GET through the published port: %q", body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the published port never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SIGTERM while a run is in flight: the call is answered (cancelled), the
// worker exits 0, and no container is left.
func TestSIGTERMDuringRunLeavesNothing(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--shutdown-grace", "1s")
	w.send(`{"jsonrpc":"2.0","id":"long","method":"run","params":` + runParams(`"name":"interrupted","timeout":60`, "sleep", "60") + `}`)
	waitRunning(t, w, "interrupted")
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line, _ := w.next(30 * time.Second)
	if !strings.Contains(line, `"id":"long"`) || !strings.Contains(line, "-32800") {
		t.Errorf("the run in flight at SIGTERM answered %s", line)
	}
	exitsLeavingNothing(t, w, service.URI, "interrupted")
	if log := w.stderr.String(); !strings.Contains(log, `"signal":"terminated signal received"`) {
		t.Errorf("the log does not say which signal arrived:\n%s", log)
	}
}

// The shutdown method: calls in flight finish within the grace period and
// are answered, later calls are refused, containers are removed, exit 0.
func TestShutdownMethodIsGraceful(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--shutdown-grace", "20s")
	w.send(`{"jsonrpc":"2.0","id":"run","method":"run","params":` + runParams(`"name":"finishing","timeout":30`, "/bin/sh", "-c", "sleep 2; echo done") + `}`)
	waitRunning(t, w, "finishing")
	w.send(`{"jsonrpc":"2.0","id":"bye","method":"shutdown"}`)
	got := map[string]string{}
	for len(got) < 3 {
		line, ok := w.next(30 * time.Second)
		if !ok {
			break
		}
		var r struct {
			ID string `json:"id"`
		}
		json.Unmarshal([]byte(line), &r)
		got[r.ID] = line
		if r.ID == "bye" {
			w.send(`{"jsonrpc":"2.0","id":"late","method":"ping"}`)
		}
	}
	if !strings.Contains(got["bye"], `"result":{"status":"shutting down"}`) || !strings.Contains(got["run"], `"stdout":"done\n"`) ||
		!strings.Contains(got["late"], "-32003") {
		t.Errorf("replies: %v; want the shutdown acknowledged, the run finished within the grace period and the late call refused", got)
	}
	exitsLeavingNothing(t, w, service.URI, "finishing")
}

// A call without a timeout of its own is bounded by --request-timeout.
func TestRequestTimeout(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--request-timeout", "1s")
	result(t, mustCall(w, "1", "create", `{"image":"localhost/busybox:latest","name":"slowexec","command":["sleep","300"]}`))
	defer w.call("9", "rm", `{"container":"slowexec","force":true}`)
	start := time.Now()
	r, _ := w.call("2", "exec", `{"name":"slowexec","command":["sleep","20"]}`)
	msg, data := errorData(t, r)
	if data["type"] != "Timeout" || data["status"] != float64(408) || !strings.Contains(msg, "--request-timeout") {
		t.Errorf("got %q %v", msg, data)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 1 s request timeout answered after %v", took)
	}
	// run has a timeout of its own: the request timeout does not cut it.
	r, _ = w.call("3", "run", runParams(`"timeout":10`, "/bin/sh", "-c", "sleep 2; echo ok"))
	if got := result(t, r)["stdout"]; got != "ok\n" {
		t.Errorf("a 2 s run under a 1 s request timeout: %v", r)
	}
}

func mustCall(w *worker, id, method, params string) map[string]any {
	r, _ := w.call(id, method, params)
	return r
}

// Removal runs after the reply; reusing the name at once must still work.
func TestRunNameReusedAtOnce(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	for i := 0; i < 5; i++ {
		r, _ := w.call(fmt.Sprint(i), "run", runParams(`"name":"same-name"`, "echo", fmt.Sprint(i)))
		if got := result(t, r)["stdout"]; got != fmt.Sprintf("%d\n", i) {
			t.Fatalf("run %d with a reused name: %v", i, r)
		}
	}
}

// At debug level each call's log line carries its params, with every
// secret replaced: nothing secret is logged at any level.
func TestSecretsNeverLogged(t *testing.T) {
	// --writable-root: add_user writes /etc, which is read-only by default.
	w := startWorker(t, "--socket", service.URI, "--debug", "--writable-root")
	result(t, mustCall(w, "1", "create", `{"image":"localhost/busybox:latest","name":"secrets","command":["sleep","300"],"environment":{"TOKEN":"SECRET-env-create"}}`))
	result(t, mustCall(w, "2", "add_user", `{"name":"secrets","username":"carol","password":"SECRET-password"}`))
	mustCall(w, "3", "add_user", `{"name":"secrets","username":"carol","password":"SECRET-password-again"}`) // fails: exists
	result(t, mustCall(w, "4", "add_file", `{"name":"secrets","dest_path":"/tmp/key","content":"SECRET-file"}`))
	result(t, mustCall(w, "5", "run", runParams(`"env":["TOKEN=SECRET-env-run"]`, "true")))
	result(t, mustCall(w, "6", "rm", `{"container":"secrets","force":true}`))
	w.closeAndWait(30 * time.Second)
	log := w.stderr.String()
	if !strings.Contains(log, `"params":`) {
		t.Fatalf("debug logging carries no params:\n%s", log)
	}
	if !regexp.MustCompile(`"prewarmed":false,"prepare_ms":[0-9.]+,"start_ms":[0-9.]+,"exit_ms":[0-9.]+,"time":"[^"]+","message":"run steps"`).MatchString(log) {
		t.Errorf("debug logging does not time the run's steps:\n%s", log)
	}
	if strings.Contains(log, "SECRET") {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "SECRET") {
				t.Errorf("a secret reached the log: %s", l)
			}
		}
	}
}

// SIGTERM during a 3-second run, default grace (10 s): the run finishes
// and is answered, nothing is left, exit 0.
func TestSIGTERMDuringShortRunAnswersIt(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	w.send(`{"jsonrpc":"2.0","id":"three","method":"run","params":` + runParams(`"name":"three-seconds","timeout":30`, "/bin/sh", "-c", "sleep 3; echo finished") + `}`)
	waitRunning(t, w, "three-seconds")
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line, _ := w.next(30 * time.Second)
	if !strings.Contains(line, `"id":"three"`) || !strings.Contains(line, `"stdout":"finished\n"`) {
		t.Errorf("the run in flight at SIGTERM answered %s; want it finished within the grace period", line)
	}
	exitsLeavingNothing(t, w, service.URI, "three-seconds")
}

// The input ends while calls are in flight: every one is answered, then exit 0.
func TestEOFWithCallsInFlight(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	for i := 0; i < 3; i++ {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"run","params":%s}`, i, runParams("", "/bin/sh", "-c", fmt.Sprintf("sleep 1; echo %d", i))))
	}
	w.send(`{"jsonrpc":"2.0","id":3,"method":"ping"}`)
	w.stdin.Close()
	answered := map[string]bool{}
	for {
		line, ok := w.next(30 * time.Second)
		if !ok {
			break
		}
		for i := 0; i < 4; i++ {
			if strings.Contains(line, fmt.Sprintf(`"id":%d,"result"`, i)) {
				answered[fmt.Sprint(i)] = true
			}
		}
	}
	if len(answered) != 4 {
		t.Errorf("answered %v after the input ended, want all 4", answered)
	}
	if err := <-w.done; err != nil {
		t.Errorf("exit: %v", err)
	}
}

// Calls that name the same container are decided in the order they
// arrived, whatever reaches Podman first: of two runs with one name sent
// together, the first runs first and the second after it (its container
// removed); a create and an rm of its name sent together both succeed.
func TestSameNameCallsInArrivalOrder(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	w.send(`{"jsonrpc":"2.0","id":"first","method":"run","params":` + runParams(`"name":"dup"`, "sh", "-c", "sleep 1; echo first") + `}`)
	w.send(`{"jsonrpc":"2.0","id":"second","method":"run","params":` + runParams(`"name":"dup"`, "echo", "second") + `}`)
	w.send(`{"jsonrpc":"2.0","id":"create","method":"create","params":{"image":"localhost/busybox:latest","name":"pair","command":["sleep","60"]}}`)
	w.send(`{"jsonrpc":"2.0","id":"rm","method":"rm","params":{"container":"pair","force":true}}`)
	var order []string
	for len(order) < 4 {
		line, ok := w.next(2 * time.Minute)
		if !ok {
			t.Fatal("output closed")
		}
		var r struct {
			ID     string          `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal([]byte(line), &r) != nil || r.ID == "" {
			continue
		}
		if r.Error != nil {
			t.Errorf("%s: %s", r.ID, line)
		}
		order = append(order, r.ID)
		if r.ID == "second" && !strings.Contains(line, `"stdout":"second\n"`) || r.ID == "first" && !strings.Contains(line, `"stdout":"first\n"`) {
			t.Errorf("%s: %s", r.ID, line)
		}
	}
	if i, j := slices.Index(order, "first"), slices.Index(order, "second"); i > j {
		t.Errorf("replies came as %v: the run sent second was decided first", order)
	}
	if i, j := slices.Index(order, "create"), slices.Index(order, "rm"); i > j {
		t.Errorf("replies came as %v: rm was decided before the create sent before it", order)
	}
}

// A prewarmed container that waits longer than its run's timeout (plus
// the second conmon adds) still serves its run in full: Podman's conmon
// counts the timeout from when the container was made, and it used to
// kill the idle container, so the run answered exit 0 with no output.
func TestPrewarmedContainerIdlePastItsTimeout(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI)
	spec := `"image":"localhost/busybox:latest","command":["sh","-c","sleep 1; echo served"],"timeout":1.5`
	if r, _ := w.call(`"warm"`, "prewarm", `{`+spec+`,"count":1}`); fmt.Sprint(r["result"]) != "map[warm:1]" {
		t.Fatalf("prewarm: %v", r)
	}
	time.Sleep(4 * time.Second) // past timeout + 1 s, rounded up: 3 s
	r, _ := w.call(`"run"`, "run", `{`+spec+`}`)
	if res := result(t, r); res["stdout"] != "served\n" || res["exit_code"] != float64(0) || res["start"] != "prewarmed" {
		t.Errorf("a run on a container prewarmed 4 s earlier, timeout 1.5 s: %v", res)
	}
}

// Long-lived containers have a ceiling per owner (--max-containers):
// past it create (and a run kept with auto_remove false) is refused
// before anything is made, and a removal makes room again. The worker's
// owned_containers counts the ones it created.
func TestCreateCeiling(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI, "--max-containers", "2")
	for _, name := range []string{"ceil-a", "ceil-b"} {
		result(t, mustCall(w, `"c"`, "create", `{"image":"localhost/busybox:latest","name":"`+name+`","command":["sleep","600"]}`))
	}
	r, _ := w.call(`"m"`, "metrics", "")
	if n := result(t, r)["owned_containers"]; n != float64(2) {
		t.Errorf("owned_containers with two created containers: %v", n)
	}
	refused(t, w, "third", "create", `{"image":"localhost/busybox:latest","name":"ceil-c","command":["sleep","600"]}`, "Forbidden", "", "--max-containers")
	refused(t, w, "kept", "run", runParams(`"auto_remove":false`, "true"), "Forbidden", "", "--max-containers")
	if list := onService(t, svc.URI); len(list) != 2 {
		t.Errorf("the refusals made containers: %v", names(list))
	}
	result(t, mustCall(w, `"rm"`, "rm", `{"container":"ceil-a","force":true}`))
	result(t, mustCall(w, `"c2"`, "create", `{"image":"localhost/busybox:latest","name":"ceil-c","command":["sleep","600"]}`))
	for _, name := range []string{"ceil-b", "ceil-c"} {
		w.call(`"rm"`, "rm", `{"container":"`+name+`","force":true}`)
	}
}

// A graceful exit right after a prewarmed run leaves nothing: the pool's
// replacement, being made as the input ends, is waited for and removed
// (it was left behind, Created, 3 times out of 3).
func TestGracefulExitLeavesNoPrewarmReplacement(t *testing.T) {
	svc := privateService(t)
	spec := `"image":"localhost/busybox:latest","command":["echo","warm"]`
	for i := range 3 {
		w := startWorker(t, "--socket", svc.URI)
		if r, _ := w.call(`"warm"`, "prewarm", `{`+spec+`,"count":1}`); fmt.Sprint(r["result"]) != "map[warm:1]" {
			t.Fatalf("prewarm: %v", r)
		}
		if res := result(t, mustCall(w, `"run"`, "run", `{`+spec+`}`)); res["start"] != "prewarmed" {
			t.Fatalf("run: %v", res)
		}
		if code := w.closeAndWait(30 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if left := onService(t, svc.URI); len(left) != 0 {
			t.Errorf("try %d: after a graceful exit the service holds %v", i+1, names(left))
		}
	}
}
