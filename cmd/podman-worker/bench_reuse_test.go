package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reusedSpec is BenchmarkRun's function (busybox printing
// {"statusCode":200}, 20m, 0.5 cpus, network none), with a timeout that a
// loaded machine does not reach.
const reusedSpec = `"image":"localhost/busybox:latest","command":["echo","{\"statusCode\":200}"],"memory":"20m","cpus":0.5,"network_mode":"none","timeout":30`

// BenchmarkRunReused measures a run served by a warm instance against, in
// the same run and alternating, a prewarmed run of the same function and
// one `podman run --rm` process per call. It reports the worker's CPU per
// reused run (user+system, from /proc) and the host memory of one idle
// instance (the resident sets of its runner and its conmon).
func BenchmarkRunReused(b *testing.B) {
	w := startLean(b, workerBin, "--socket", service.URI)
	prewarm(b, w, reusedSpec, 2)
	call := func(params string) func() { return runCall(b, w, params) }
	reused, prewarmed := call(reusedSpec+`,"reuse":true`), call(reusedSpec)
	cli := func() {
		if err := cliRun(); err != nil {
			b.Fatal(err)
		}
	}
	reused() // starts the instance
	prewarmed()
	time.Sleep(500 * time.Millisecond) // the pool refills
	kib := instanceRSS(b)
	cpu0 := cpuTicks(w.cmd.Process.Pid)
	const n = 100
	for i := 0; i < n; i++ {
		reused()
	}
	ticks := cpuTicks(w.cmd.Process.Pid) - cpu0

	alternate(b, contender{"reused", reused}, contender{"prewarmed", prewarmed}, contender{"podman-run", cli})
	// After alternate: it resets the timer, which drops reported metrics.
	b.ReportMetric(float64(kib), "idle-instance-rss-KiB")
	b.ReportMetric(float64(ticks)*10/n, "worker-cpu-ms/reused-run") // 100 ticks a second
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRunReusedThroughput measures reused runs per second with 8 in
// flight (8 instances), against prewarmed runs with 8 in flight, same run.
func BenchmarkRunReusedThroughput(b *testing.B) {
	for _, c := range []struct{ name, params string }{{"reused", reusedSpec + `,"reuse":true`}, {"prewarmed", reusedSpec}} {
		w := startLean(b, workerBin, "--socket", service.URI, "--max-workers", "8", "--max-instances", "8")
		if c.name == "reused" {
			w.roundTrip([]byte(`{"jsonrpc":"2.0","id":0,"method":"prewarm","params":{` + reusedSpec + `,"reuse":true,"count":8}}` + "\n"))
		} else {
			w.roundTrip([]byte(`{"jsonrpc":"2.0","id":0,"method":"prewarm","params":{` + reusedSpec + `,"count":8}}` + "\n"))
		}
		n := max(b.N, 80)
		start := time.Now()
		pipeline(b, w, n, 8, func(i int) string {
			return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"run","params":{%s}}`, i+1, c.params)
		}, func(line string) {
			if !strings.Contains(line, `"result"`) {
				b.Fatalf("run failed: %.300s", line)
			}
		})
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), c.name+"-runs/s")
	}
	b.ReportMetric(0, "ns/op")
}

// cpuTicks is a process's user and system time, in clock ticks.
func cpuTicks(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}

// instanceRSS is the resident memory of one instance's runner and its
// conmon, found by the runner's command line.
func instanceRSS(b *testing.B) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(cmdline, []byte("/.podman-worker/runner")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		b.Logf("instance: runner pid %d (%d KiB), conmon pid %d (%d KiB)", pid, rssKiB(pid), ppid, rssKiB(ppid))
		return rssKiB(pid) + rssKiB(ppid)
	}
	return 0
}

// BenchmarkCopyImage copies an image (testdata/build/hello, built by the
// worker) between two private services with copy_image, against
// `podman save | podman load` between the same two, alternating.
func BenchmarkCopyImage(b *testing.B) {
	one, two := privateService(b), privateService(b)
	w := startLean(b, workerBin, "--socket", one.URI, "--connection", "two="+two.URI, "--build-roots", repoRoot+"/testdata/build")
	// Both methods send progress notifications before their reply.
	reply := func(req string) string {
		w.send(req)
		for {
			line, ok := w.next(5 * time.Minute)
			if !ok {
				b.Fatalf("no reply to %s", req)
			}
			if !strings.Contains(line, `"method":`) {
				return line
			}
		}
	}
	if r := reply(`{"jsonrpc":"2.0","id":0,"method":"build","params":{"context":"` + repoRoot + `/testdata/build/hello","tag":"copy:bench"}}`); !strings.Contains(r, `"result"`) {
		b.Fatalf("build: %s", r)
	}
	copyImage := func() {
		if r := reply(`{"jsonrpc":"2.0","id":1,"method":"copy_image","params":{"image":"copy:bench","from":"default","to":"two"}}`); !strings.Contains(r, `"result"`) {
			b.Fatalf("copy_image: %s", r)
		}
	}
	saveLoad := func() {
		cmd := exec.Command("sh", "-c", `podman --url "$1" save localhost/copy:bench | podman --url "$2" load >/dev/null`, "sh", one.URI, two.URI)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("podman save | podman load: %v %s", err, out)
		}
	}
	copyImage() // warm up
	saveLoad()
	alternate(b, contender{"copy_image", copyImage}, contender{"save-load", saveLoad})
	b.ReportMetric(0, "ns/op")
}
