package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Prometheus' /metrics from the built worker over a real private Podman:
// scraped and parsed with expfmt's strict text parser.

// metricsAddr reads the address of --metrics-addr from the worker's
// "serving metrics" log line.
func metricsAddr(t *testing.T, w *worker) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(w.stderr.String(), "\n") {
			var l struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "serving metrics" {
				return l.Addr
			}
		}
	}
	t.Fatalf("no \"serving metrics\" line within a minute:\n%s", w.stderr.String())
	return ""
}

// scrapeURL GETs url with token (when set) and parses the answer; a
// status other than 200 is returned with no families.
func scrapeURL(t testing.TB, url, token string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape of %s does not parse: %v\n%s", url, err, body)
	}
	return 200, fams
}

// series is the value of fam's series with exactly labels (0 if absent).
func series(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		for _, l := range m.Label {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// Each family moves with the calls made, and the JSON metrics method
// reads the same numbers.
func TestPrometheusMetricsMoveWithCalls(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--metrics-addr", "127.0.0.1:0")
	url := "http://" + metricsAddr(t, w) + "/metrics"
	_, before := scrapeURL(t, url, "")
	for _, name := range []string{"go_goroutines", "process_open_fds", "podman_worker_in_flight", "podman_worker_queued",
		"podman_worker_queued_bytes", "podman_worker_warm_containers", "podman_worker_owned_containers"} {
		if before[name] == nil {
			t.Errorf("no family %s", name)
		}
	}
	if series(before, "podman_worker_podman_up", "connection", "default") != 1 {
		t.Errorf("podman_up{connection=default} is not 1 with Podman up")
	}
	if series(before, "podman_worker_podman_latency_seconds", "connection", "default") <= 0 {
		t.Errorf("podman_latency_seconds{connection=default} is not positive")
	}

	for i := range 3 {
		mustCall(w, fmt.Sprintf(`"p%d"`, i), "ping", "")
	}
	w.call(`"u"`, "no_such_method", "")
	fn := `"image":"localhost/busybox:latest","memory":"20m","network_mode":"none"`
	mustCall(w, `"ok"`, "run", `{`+fn+`,"command":["echo","hi"]}`)
	w.call(`"failed"`, "run", `{`+fn+`,"command":["sh","-c","exit 3"]}`)
	w.call(`"timeout"`, "run", `{`+fn+`,"command":["sleep","30"],"timeout":1}`)
	w.call(`"refused"`, "run", `{"image":"localhost/busybox:latest","command":["true"],"memory":"1t"}`)
	warm := `"image":"localhost/busybox:latest","command":["echo","warm"],"memory":"20m","cpus":0.5,"network_mode":"none"`
	mustCall(w, `"prewarm"`, "prewarm", `{`+warm+`,"count":1}`)
	if r := mustCall(w, `"warm"`, "run", `{`+warm+`}`); result(t, r)["start"] != "prewarmed" {
		t.Fatalf("the run after prewarm was not prewarmed: %v", r)
	}

	_, after := scrapeURL(t, url, "")
	moved := func(name string, want float64, labels ...string) {
		t.Helper()
		if d := series(after, name, labels...) - series(before, name, labels...); d != want {
			t.Errorf("%s%v moved by %v, want %v", name, labels, d, want)
		}
	}
	moved("podman_worker_calls_total", 3, "method", "ping", "outcome", "ok")
	moved("podman_worker_calls_total", 1, "method", "unknown", "outcome", "methodnotfound")
	moved("podman_worker_calls_total", 2, "method", "run", "outcome", "ok") // cold and prewarmed
	moved("podman_worker_calls_total", 1, "method", "run", "outcome", "executionfailed")
	moved("podman_worker_calls_total", 1, "method", "run", "outcome", "timeout")
	moved("podman_worker_call_duration_seconds", 3, "method", "ping")
	moved("podman_worker_call_duration_seconds", 5, "method", "run")
	moved("podman_worker_runs_total", 1, "result", "ok", "start", "cold")
	moved("podman_worker_runs_total", 1, "result", "failed", "start", "cold")
	moved("podman_worker_runs_total", 1, "result", "timeout", "start", "cold")
	moved("podman_worker_runs_total", 1, "result", "error", "start", "cold")
	moved("podman_worker_runs_total", 1, "result", "ok", "start", "prewarmed")
	moved("podman_worker_calls_total", 1, "method", "prewarm", "outcome", "ok")

	// The JSON method, asked right after the scrape, counts what the
	// scrape counted. The gauges of containers move on their own for a
	// while after the runs (removals finish, a prewarmed container is
	// replaced): both are read again until they hold still.
	var scraped map[string]*dto.MetricFamily
	var js metricsResult
	for try := 0; ; try++ {
		_, scraped = scrapeURL(t, url, "")
		js = metricsResult{}
		raw, _ := json.Marshal(result(t, mustCall(w, fmt.Sprintf(`"m%d"`, try), "metrics", "")))
		if err := json.Unmarshal(raw, &js); err != nil {
			t.Fatal(err)
		}
		still := series(scraped, "podman_worker_owned_containers") == float64(js.OwnedContainers) &&
			series(scraped, "podman_worker_warm_containers") == float64(js.Warm.Ready)
		if still || try == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := 0.0
	for _, m := range scraped["podman_worker_calls_total"].Metric {
		var method, outcome string
		for _, l := range m.Label {
			switch l.GetName() {
			case "method":
				method = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		total += m.Counter.GetValue()
		if method == "unknown" {
			method = "(unknown method)"
		}
		ms := js.Methods[method]
		if outcome == "ok" && float64(ms.Count-ms.Errors) != m.Counter.GetValue() {
			t.Errorf("calls_total{method=%q,outcome=ok} = %v, the JSON method says %d ok", method, m.Counter.GetValue(), ms.Count-ms.Errors)
		}
	}
	if total != float64(js.RequestsTotal) {
		t.Errorf("calls_total sums to %v, the JSON method's requests_total is %d", total, js.RequestsTotal)
	}
	for _, c := range []struct {
		name string
		json float64
	}{
		{"podman_worker_owned_containers", float64(js.OwnedContainers)},
		{"podman_worker_warm_containers", float64(js.Warm.Ready)},
		{"podman_worker_max_workers", float64(js.Workers.MaxWorkers)},
	} {
		if v := series(scraped, c.name); v != c.json {
			t.Errorf("%s = %v, the JSON method says %v", c.name, v, c.json)
		}
	}
	// The JSON method counts runs whose container started: every result
	// but error (here a run refused before any container was made).
	for _, start := range []string{"cold", "prewarmed"} {
		n := 0.0
		for _, r := range []string{"ok", "failed", "timeout", "oom", "cancelled"} {
			n += series(scraped, "podman_worker_runs_total", "result", r, "start", start)
		}
		if n != float64(js.Runs[start]) {
			t.Errorf("runs_total{start=%q} (results but error) sums to %v, the JSON method's runs[%q] is %d", start, n, start, js.Runs[start])
		}
	}
}

// Every expression of the example alert rules and every query of the
// example Grafana dashboard names only families a real scrape has (and
// Prometheus' own up); promtool checks the rules when it is installed.
func TestPrometheusExamplesNameExportedFamilies(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--metrics-addr", "127.0.0.1:0")
	mustCall(w, `"p"`, "ping", "")
	_, fams := scrapeURL(t, "http://"+metricsAddr(t, w)+"/metrics", "")
	dir := filepath.Join("..", "..", "examples", "prometheus")
	exported := func(name string) bool {
		if fams[name] != nil || name == "up" {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
		return false
	}
	names := regexp.MustCompile(`\b(?:podman_worker_|go_|process_)[a-z0-9_]+|\bup\b`)
	check := func(where, expr string) {
		found := names.FindAllString(expr, -1)
		if len(found) == 0 {
			t.Errorf("%s: %q names no family of the worker", where, expr)
		}
		for _, n := range found {
			if !exported(n) {
				t.Errorf("%s: %q names %s, which the worker does not export", where, expr, n)
			}
		}
	}

	rules, err := os.ReadFile(filepath.Join(dir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	exprs := regexp.MustCompile(`(?m)^\s*expr:\s*(.+)$`).FindAllStringSubmatch(string(rules), -1)
	if len(exprs) < 4 {
		t.Fatalf("alerts.yml has %d expressions; want Podman down, timeouts, OOMs and the queue at least", len(exprs))
	}
	for _, m := range exprs {
		check("alerts.yml", m[1])
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		for _, args := range [][]string{{"check", "rules", filepath.Join(dir, "alerts.yml")}, {"check", "config", filepath.Join(dir, "scrape.yml")}} {
			if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	} else {
		t.Log("promtool is not installed (Debian's prometheus package): the rules' names were checked, not their syntax")
	}

	raw, err := os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("grafana-dashboard.json has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			check("dashboard panel "+p.Title, q.Expr)
		}
	}
	// Any other name anywhere in the file (the instance variable's query).
	check("grafana-dashboard.json", string(raw))
}

// --metrics-addr beyond loopback needs a token (exit 2 before Podman is
// looked for); with one, a scrape without it is 401. In --http mode
// /metrics is on the API's listener too, behind the API's token.
func TestPrometheusTokenRules(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{[]string{"--metrics-addr", "0.0.0.0:9464"}, nil, "--metrics-addr / PODMAN_WORKER_METRICS_ADDR: \"0.0.0.0:9464\" listens beyond this machine, so scrapes need a bearer token"},
		{[]string{"--metrics-addr", ":9464"}, nil, "need a bearer token"},
		{nil, map[string]string{"PODMAN_WORKER_METRICS_ADDR": "[::]:9464"}, "need a bearer token"},
		{[]string{"--metrics-addr", "0.0.0.0:9464"}, map[string]string{"PODMAN_WORKER_METRICS_TOKEN": "short"}, "PODMAN_WORKER_METRICS_TOKEN: the token must be at least 16 characters"},
		{[]string{"--metrics-token-file", "/nonexistent/token"}, nil, "--metrics-token-file applies to --metrics-addr"},
		{[]string{"--metrics-addr", "9464"}, nil, "must be HOST:PORT"},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), process{
			args: append([]string{"--socket", "unix:///nonexistent/podman.sock"}, tc.args...), getenv: func(k string) string { return tc.env[k] },
			pid: os.Getpid(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
		})
		if code != 2 || !strings.Contains(stderr.String(), tc.says) {
			t.Errorf("%v %v: exit %d, %q; want 2 saying %q", tc.args, tc.env, code, stderr.String(), tc.says)
		}
	}

	const token = "podman-worker-metrics-token-0123456789"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--socket", service.URI, "--metrics-addr", "0.0.0.0:0", "--metrics-token-file", file)
	addr := metricsAddr(t, w)
	url := "http://127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:] + "/metrics"
	for _, tok := range []string{"", "not-the-token-at-all-0123456789"} {
		if code, _ := scrapeURL(t, url, tok); code != 401 {
			t.Errorf("scrape with token %q: %d, want 401", tok, code)
		}
	}
	if code, fams := scrapeURL(t, url, token); code != 200 || fams["podman_worker_calls_total"] == nil {
		t.Errorf("scrape with the token: %d", code)
	}
	if strings.Contains(w.stderr.String(), token) {
		t.Errorf("the log holds the token")
	}

	// --http: /metrics on the API's listener, behind the API's token; the
	// API's own JSON metrics route stays as it is.
	hw := startHTTPWorker(t, "--socket", service.URI, "--http-token-file", file)
	if a := hw.do(t, "GET", "/metrics", ""); a.status != 401 {
		t.Errorf("GET /metrics on the API without the token: %d, want 401", a.status)
	}
	code, fams := scrapeURL(t, hw.url+"/metrics", token)
	if code != 200 || series(fams, "podman_worker_podman_up", "connection", "default") != 1 {
		t.Errorf("GET /metrics on the API with its token: %d", code)
	}
	hw.token = token
	must(t, hw.do(t, "GET", "/api/v1/metrics", ""), 200, "the JSON metrics route")
	code, after := scrapeURL(t, hw.url+"/metrics", token)
	if code != 200 || series(after, "podman_worker_calls_total", "method", "metrics", "outcome", "ok") != 1 {
		t.Errorf("the API's JSON metrics call is not counted in calls_total{method=metrics}")
	}
}
