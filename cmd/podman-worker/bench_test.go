package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/specgen"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// BenchmarkPing measures a warm ping through the worker's stdio against the
// floor, the same /_ping on one keep-alive connection to the same socket,
// and against the least any stdio co-process can do: a child (the test
// binary itself) that reads a line, makes the same GET and writes a fixed
// reply. The three alternate in blocks, so that drift hits them alike. The ratios
// are what matter; absolute times differ between machines. make bench runs it.
func BenchmarkPing(b *testing.B) {
	w := startLean(b, workerBin, "--socket", service.URI)
	relay := startLean(b, os.Args[0]) // the test binary as a minimal relay
	get := socketClient(service.Socket, 1)
	ping := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	viaWorker := func() {
		if r := w.roundTrip(ping); !bytes.Contains(r, []byte(`"result":"Pong"`)) {
			b.Fatalf("ping: %s", r)
		}
	}
	viaRelay := func() { relay.roundTrip(ping) }
	direct := func() { get("/_ping") }
	viaWorker()
	viaRelay()
	direct()

	b.ResetTimer()
	var tw, ts, tr []time.Duration
	for done := 0; done < b.N; {
		block := min(500, b.N-done)
		for i := 0; i < block; i++ {
			ts = append(ts, timed(direct))
		}
		for i := 0; i < block; i++ {
			tw = append(tw, timed(viaWorker))
		}
		for i := 0; i < block; i++ {
			tr = append(tr, timed(viaRelay))
		}
		done += block
	}
	b.StopTimer()

	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	w50, s50, r50 := percentile(tw, 50), percentile(ts, 50), percentile(tr, 50)
	b.ReportMetric(us(w50), "worker-p50-us")
	b.ReportMetric(us(percentile(tw, 99)), "worker-p99-us")
	b.ReportMetric(us(s50), "socket-p50-us")
	b.ReportMetric(us(percentile(ts, 99)), "socket-p99-us")
	b.ReportMetric(us(r50), "relay-p50-us")
	b.ReportMetric(float64(len(tw))/sum(tw).Seconds(), "worker-calls/s")
	b.ReportMetric(float64(len(ts))/sum(ts).Seconds(), "socket-calls/s")
	b.ReportMetric(w50.Seconds()/s50.Seconds(), "worker/socket")
	b.ReportMetric(r50.Seconds()/s50.Seconds(), "relay/socket")
	b.ReportMetric(w50.Seconds()/r50.Seconds(), "worker/relay")
	b.ReportMetric(0, "ns/op") // the figures above replace it
}

// BenchmarkPingScraped measures a ping through a worker whose /metrics
// (--metrics-addr) is scraped every 100 ms, against a worker that nobody
// scrapes, alternating in the same run: scraping must not slow calls. It
// reports each one's p50 and p99, the ratio, and what a scrape took.
func BenchmarkPingScraped(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	none := startLean(b, workerBin, "--socket", service.URI)
	scraped := startLean(b, workerBin, "--socket", service.URI, "--metrics-addr", addr)
	ping := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	call := func(w *leanWorker) func() {
		return func() {
			if r := w.roundTrip(ping); !bytes.Contains(r, []byte(`"result":"Pong"`)) {
				b.Fatalf("ping: %s", r)
			}
		}
	}
	scrape := func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("scrape: %s %v", resp.Status, err)
		}
		return nil
	}
	if err := scrape(); err != nil {
		b.Fatal(err)
	}
	call(none)()
	call(scraped)()

	stop, done := make(chan struct{}), make(chan []time.Duration)
	go func() {
		var took []time.Duration
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- took
				return
			case <-tick.C:
				start := time.Now()
				if err := scrape(); err != nil {
					b.Error(err)
				}
				took = append(took, time.Since(start))
			}
		}
	}()
	alternate(b, contender{"none", call(none)}, contender{"scraped", call(scraped)})
	close(stop)
	scrapes := <-done
	b.ReportMetric(float64(len(scrapes)), "scrapes")
	if len(scrapes) > 0 {
		b.ReportMetric(float64(percentile(scrapes, 50).Microseconds())/1000, "scrape-p50-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// socketClient returns a GET on up to conns keep-alive connections to a
// Podman socket: the floor the worker is measured against, and the minimal
// relay's one call. It panics on a failure (the relay is a child process).
func socketClient(socket string, conns int) func(path string) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: conns,
	}}
	return func(path string) {
		resp, err := client.Get("http://d/v5.0.0/libpod" + path)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			panic(path + ": " + resp.Status)
		}
	}
}

func sum(d []time.Duration) (total time.Duration) {
	for _, x := range d {
		total += x
	}
	return total
}

// BenchmarkRun measures one function invocation (busybox printing
// {"statusCode":200}, 20m, 0.5 cpus, network none, removed) three ways in
// the same run, sequentially: through the worker; as the plain
// create-start-wait-logs-remove sequence through the bindings with their
// defaults, in this warm process; and as one `podman run --rm` process per
// call. It reports p50 and p99 of each and the ratios to the worker.
func BenchmarkRun(b *testing.B) {
	w := startLean(b, workerBin, "--socket", service.URI)
	viaWorker := func() {
		if r := w.roundTrip(runRequest(1)); !bytes.Contains(r, []byte(`"result"`)) {
			b.Fatalf("run: %s", r)
		}
	}
	ctx, err := bindings.NewConnection(context.Background(), service.URI)
	if err != nil {
		b.Fatal(err)
	}
	must := func(f func() error) func() {
		return func() {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
	}
	plain, cli := must(func() error { return plainRun(ctx) }), must(cliRun)
	viaWorker() // warm up
	plain()

	alternate(b, contender{"worker", viaWorker}, contender{"bindings", plain}, contender{"podman-run", cli})
	b.ReportMetric(0, "ns/op")
}

// contender is one way of doing what a benchmark measures.
type contender struct {
	name string
	f    func()
}

// alternate times each contender once per round, in order, for b.N
// rounds, so that drift hits them alike, and reports each one's p50 and
// p99 and every other one's p50 as a ratio to the first's ("cold/prewarmed").
func alternate(b *testing.B, cs ...contender) {
	b.ResetTimer()
	times := make([][]time.Duration, len(cs))
	for i := 0; i < b.N; i++ {
		for k, c := range cs {
			times[k] = append(times[k], timed(c.f))
		}
	}
	b.StopTimer()
	for k, c := range cs {
		reportLatency(b, c.name, times[k])
	}
	first := percentile(times[0], 50)
	for k, c := range cs[1:] {
		b.ReportMetric(percentile(times[k+1], 50).Seconds()/first.Seconds(), c.name+"/"+cs[0].name)
	}
}

// BenchmarkRunPrewarmed measures a run that takes a prewarmed container
// (the spec prewarmed with count 2; the pool refills between runs) against,
// in the same run and alternating, a cold run of the worker (the same
// function with another timeout, so no pool matches it) and one
// `podman run --rm` process per call.
func BenchmarkRunPrewarmed(b *testing.B) {
	w := startLean(b, workerBin, "--socket", service.URI)
	spec := `"image":"localhost/busybox:latest","command":["echo","{\"statusCode\":200}"],"memory":"20m","cpus":0.5,"network_mode":"none"`
	prewarm(b, w, spec, 2)
	call := func(params string) func() { return runCall(b, w, params) }
	warm, cold := call(spec), call(spec+`,"timeout":6`)
	cli := func() {
		if err := cliRun(); err != nil {
			b.Fatal(err)
		}
	}
	warm() // warm up
	cold()
	time.Sleep(500 * time.Millisecond) // the pool refills

	alternate(b, contender{"prewarmed", warm}, contender{"cold", cold}, contender{"podman-run", cli})
	// Runs that found the pool empty went cold: say how many.
	m := w.roundTrip([]byte(`{"jsonrpc":"2.0","id":2,"method":"metrics"}` + "\n"))
	if i := bytes.Index(m, []byte(`"misses":`)); i >= 0 {
		b.Logf("pool: %s", m[bytes.LastIndex(m[:i], []byte(`"hits"`)):i+12])
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRunInput: the same run with a 64 KiB input that the function
// reads (wc -c), against one without input, alternating call by call.
func BenchmarkRunInput(b *testing.B) {
	w := startLean(b, workerBin, "--socket", service.URI)
	input := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	call := func(extra, want string) func() {
		line := []byte(`{"jsonrpc":"2.0","id":1,"method":"run","params":{"image":"localhost/busybox:latest","command":["wc","-c"],"memory":"20m","cpus":0.5` + extra + `}}` + "\n")
		return func() {
			if r := w.roundTrip(line); !bytes.Contains(r, []byte(want)) {
				b.Fatalf("run: %s", r)
			}
		}
	}
	with, without := call(`,"input":"`+input+`"`, `"stdout":"65536\n"`), call("", `"stdout":"0\n"`)
	with() // warm up
	without()
	alternate(b, contender{"input-64k", with}, contender{"no-input", without})
	b.ReportMetric(0, "ns/op")
}

// runRequest is the benchmarks' function invocation as a run call.
func runRequest(id int) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"run","params":{"image":"localhost/busybox:latest","command":["echo","{\"statusCode\":200}"],"memory":"20m","cpus":0.5,"network_mode":"none"}}`+"\n", id)
}

// plainRun is the same invocation as the plain create-start-wait-logs-remove
// sequence through the bindings with their defaults.
func plainRun(ctx context.Context) error {
	g := specgen.NewSpecGenerator(podmantest.BusyboxImage, false)
	g.Command = []string{"echo", `{"statusCode":200}`}
	mem, quota, period := int64(20<<20), int64(50000), uint64(100000)
	g.ResourceLimits = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem, Swap: &mem}, CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}
	g.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	r, err := containers.CreateWithSpec(ctx, g, nil)
	if err != nil {
		return err
	}
	if err := containers.Start(ctx, r.ID, nil); err != nil {
		return err
	}
	if _, err := containers.Wait(ctx, r.ID, nil); err != nil {
		return err
	}
	out := make(chan string, 16)
	if err := containers.Logs(ctx, r.ID, new(containers.LogOptions).WithStdout(true), out, out); err != nil {
		return err
	}
	_, err = containers.Remove(ctx, r.ID, new(containers.RemoveOptions).WithForce(true))
	return err
}

// cliRun is the same invocation as one `podman run --rm` process.
func cliRun() error {
	cmd := exec.Command("podman", "--url", service.URI, "run", "--rm", "--network", "none", "--memory", "20m",
		"--memory-swap", "20m", "--cpus", "0.5", podmantest.BusyboxImage, "echo", `{"statusCode":200}`)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "statusCode") {
		return fmt.Errorf("podman run: %v: %s", err, out)
	}
	return nil
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func percentile(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// BenchmarkPingConcurrent measures throughput with 8 and 64 calls in
// flight, through the worker against the same number of concurrent
// keep-alive connections to the socket. The two alternate in blocks of
// 500 calls, so that drift (the machine's other load, Podman's own
// state) hits them alike; each block starts with nothing in flight.
func BenchmarkPingConcurrent(b *testing.B) {
	for _, inFlight := range []int{8, 64} {
		b.Run(fmt.Sprintf("inflight-%d", inFlight), func(b *testing.B) {
			w := startLean(b, workerBin, "--socket", service.URI, "--max-workers", fmt.Sprint(inFlight))
			w.roundTrip([]byte(`{"jsonrpc":"2.0","id":0,"method":"ping"}` + "\n"))
			get := socketClient(service.Socket, inFlight)
			n := b.N
			sent := make([]time.Time, n)
			tw := make([]time.Duration, 0, n)
			var ts []time.Duration
			var worker, floor time.Duration
			for done := 0; done < n; {
				block := min(500, n-done)
				start := time.Now()
				pipeline(b, w, block, inFlight, func(i int) string {
					sent[done+i] = time.Now()
					return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, done+i)
				}, func(line string) {
					// Only the id is read: the socket baseline parses nothing either.
					_, rest, _ := strings.Cut(line, `"id":`)
					id, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
					tw = append(tw, time.Since(sent[id]))
				})
				worker += time.Since(start)
				elapsed, each := concurrently(b, block, inFlight, func() error { get("/_ping"); return nil })
				floor += elapsed
				ts = append(ts, each...)
				done += block
			}
			reportLatency(b, "worker", tw)
			reportLatency(b, "socket", ts)
			b.ReportMetric(float64(n)/worker.Seconds(), "worker-calls/s")
			b.ReportMetric(float64(n)/floor.Seconds(), "socket-calls/s")
			b.ReportMetric(worker.Seconds()/floor.Seconds(), "worker/socket")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// concurrently runs f n times with inFlight at once, and returns the time
// it all took and each call's.
func concurrently(b *testing.B, n, inFlight int, f func() error) (time.Duration, []time.Duration) {
	each := make([]time.Duration, n)
	slots := make(chan struct{}, inFlight)
	errs := make(chan error, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			t := time.Now()
			if err := f(); err != nil {
				errs <- err
			}
			each[i] = time.Since(t)
		}()
	}
	for i := 0; i < inFlight; i++ {
		slots <- struct{}{}
	}
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return elapsed, each
}

func reportLatency(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 50).Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(percentile(d, 99).Microseconds())/1000, name+"-p99-ms")
}

// BenchmarkPodmanVersionPerCall is what users do instead of a warm worker:
// one `podman --url ... version` process per call, one at a time and with
// 8 and 64 in flight.
func BenchmarkPodmanVersionPerCall(b *testing.B) {
	for _, inFlight := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("inflight-%d", inFlight), func(b *testing.B) {
			elapsed, d := concurrently(b, b.N, inFlight, podmanVersion)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			reportLatency(b, "cli", d)
			b.ReportMetric(0, "ns/op")
		})
	}
}

func podmanVersion() error {
	if out, err := exec.Command("podman", "--url", service.URI, "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// BenchmarkRunThroughput measures runs per second with 1, 2, 4 and 8 in
// flight: through the worker, as the bindings' sequence in this process,
// and as `podman run --rm` processes.
func BenchmarkRunThroughput(b *testing.B) {
	ctx, err := bindings.NewConnection(context.Background(), service.URI)
	if err != nil {
		b.Fatal(err)
	}
	for _, inFlight := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("inflight-%d", inFlight), func(b *testing.B) {
			w := startLean(b, workerBin, "--socket", service.URI, "--max-workers", fmt.Sprint(inFlight))
			w.roundTrip(runRequest(0))
			idle := goroutines(b, w.roundTrip([]byte(`{"jsonrpc":"2.0","id":"idle","method":"metrics"}`+"\n")))
			var loaded, rss, got int
			start := time.Now()
			pipeline(b, w, b.N, inFlight, func(i int) string {
				return strings.TrimSuffix(string(runRequest(i+1)), "\n")
			}, func(line string) {
				switch got++; {
				case strings.Contains(line, `"id":"load"`):
					loaded = goroutines(b, []byte(line))
				case !strings.Contains(line, `"result"`):
					b.Fatalf("run failed: %.300s", line)
				case got == max(b.N/2, 1):
					// Halfway, with inFlight runs going: the worker's size under load.
					rss = rssKiB(w.cmd.Process.Pid)
					w.send(`{"jsonrpc":"2.0","id":"load","method":"metrics"}`)
				}
			})
			// pipeline stopped after b.N lines of the b.N+1 sent back.
			if last, _ := w.next(0); loaded == 0 {
				loaded = goroutines(b, []byte(last))
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "worker-runs/s")
			b.ReportMetric(float64(rss), "worker-rss-KiB")
			b.ReportMetric(float64(idle), "idle-goroutines")
			b.ReportMetric(float64(loaded), "load-goroutines")
			plain, _ := concurrently(b, b.N, inFlight, func() error { return plainRun(ctx) })
			b.ReportMetric(float64(b.N)/plain.Seconds(), "bindings-runs/s")
			cli, _ := concurrently(b, b.N, inFlight, cliRun)
			b.ReportMetric(float64(b.N)/cli.Seconds(), "podman-run-runs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkStartup measures the time from exec to the worker.ready line,
// and the worker's resident memory when idle.
func BenchmarkStartup(b *testing.B) {
	var d []time.Duration
	var rss int
	for i := 0; i < b.N; i++ {
		start := time.Now()
		w := startBinary(b, plainBin, "--socket", service.URI)
		if line, _ := w.next(time.Minute); !strings.Contains(line, "worker.ready") {
			b.Fatalf("first line %q", line)
		}
		d = append(d, time.Since(start))
		rss = rssKiB(w.cmd.Process.Pid)
		w.closeAndWait(time.Minute)
	}
	b.ReportMetric(float64(percentile(d, 50).Microseconds())/1000, "ready-p50-ms")
	b.ReportMetric(float64(rss), "idle-rss-KiB")
	b.ReportMetric(0, "ns/op")
}

// goroutines reads the goroutine count from a metrics reply.
func goroutines(b *testing.B, reply []byte) int {
	var r struct {
		Result struct{ Goroutines int } `json:"result"`
	}
	if err := json.Unmarshal(reply, &r); err != nil || r.Result.Goroutines == 0 {
		b.Fatalf("metrics: %v: %s", err, reply)
	}
	return r.Result.Goroutines
}

func rssKiB(pid int) int {
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}

// leanWorker drives a child the way a backend does in production: one
// goroutine writes a line and reads the reply, and stderr goes to a file
// rather than through a pipe this process must drain. The benchmarks use it
// so that none of the test harness's goroutines sit between the processes.
type leanWorker struct {
	tb  testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startLean(tb testing.TB, bin string, args ...string) *leanWorker {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	if bin == os.Args[0] {
		cmd.Env = append(os.Environ(), relayEnv+"="+service.Socket, "GOMAXPROCS=1") // see TestMain
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(tb.TempDir(), "stderr.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			tb.Errorf("%s exited with %v", filepath.Base(bin), err)
		}
		logs.Close()
	})
	w := &leanWorker{tb: tb, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	if bin == workerBin {
		if line, _ := w.next(0); !strings.Contains(line, "worker.ready") {
			tb.Fatalf("the first line is not worker.ready: %q", line)
		}
	}
	return w
}

func (w *leanWorker) send(line string) {
	if _, err := io.WriteString(w.in, line+"\n"); err != nil {
		w.tb.Fatal(err)
	}
}

// next reads a line; benchmarks wait as long as it takes.
func (w *leanWorker) next(time.Duration) (string, bool) {
	line, err := w.out.ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err == nil
}

func (w *leanWorker) roundTrip(line []byte) []byte {
	if _, err := w.in.Write(line); err != nil {
		w.tb.Fatal(err)
	}
	reply, err := w.out.ReadSlice('\n')
	if err != nil {
		w.tb.Fatal(err)
	}
	return reply
}

// relayEnv makes the test binary the least a stdio co-process can do
// (see TestMain): for each line read, one GET /_ping on a keep-alive
// connection to the socket it names, then a fixed reply line. It shows
// what any relay between a pipe and Podman costs over the socket alone.
const relayEnv = "PODMAN_WORKER_BENCH_RELAY"

func relayLines(socket string) int {
	get := socketClient(socket, 1)
	in := bufio.NewReader(os.Stdin)
	for {
		if _, err := in.ReadSlice('\n'); err != nil {
			return 0
		}
		get("/_ping")
		os.Stdout.WriteString(`{"jsonrpc":"2.0","id":1,"result":"Pong"}` + "\n")
	}
}

// prewarm keeps count containers of spec (run params) ready.
func prewarm(b *testing.B, w *leanWorker, spec string, count int) {
	if r := w.roundTrip(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":0,"method":"prewarm","params":{%s,"count":%d}}`+"\n", spec, count)); !bytes.Contains(r, fmt.Appendf(nil, `"warm":%d`, count)) {
		b.Fatalf("prewarm: %s", r)
	}
}

// runCall is a run of params through w that must succeed, as a func.
func runCall(b *testing.B, w *leanWorker, params string) func() {
	line := []byte(`{"jsonrpc":"2.0","id":1,"method":"run","params":{` + params + `}}` + "\n")
	return func() {
		if r := w.roundTrip(line); !bytes.Contains(r, []byte(`"result"`)) {
			b.Fatalf("run: %s", r)
		}
	}
}
