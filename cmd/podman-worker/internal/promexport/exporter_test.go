package promexport

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// fake is a worker's state as the exporter's sources report it.
type fake struct {
	stats       rpc.Stats
	queuedBytes int64
	warm, owned int
	statuses    map[string]podman.Status
}

func (f *fake) exporter() *Exporter {
	return New(Sources{
		Methods:         []string{"ping", "run", "build", "metrics"},
		Stats:           func() rpc.Stats { return f.stats },
		QueuedBytes:     func() int64 { return f.queuedBytes },
		MaxQueued:       64,
		MaxQueuedBytes:  64 << 20,
		WarmContainers:  func() int { return f.warm },
		OwnedContainers: func() int { return f.owned },
		Statuses:        func(context.Context) map[string]podman.Status { return f.statuses },
	})
}

// Scrape GETs /metrics through h and parses it with expfmt's strict text
// parser.
func Scrape(t testing.TB, h http.Handler, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// value is the one series of fam whose labels include want (nil: absent).
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) *float64 {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		return &v
	}
	return nil
}

func TestFamiliesMoveWithCalls(t *testing.T) {
	f := &fake{stats: rpc.Stats{MaxWorkers: 8, Busy: 2, Queued: 3}, queuedBytes: 1234, warm: 4, owned: 5,
		statuses: map[string]podman.Status{"default": {Connected: true, LatencyMs: 2}, "remote": {Connected: false}}}
	e := f.exporter()
	e.Observe("ping", 2*time.Millisecond, nil)
	e.Observe("ping", 3*time.Millisecond, nil)
	e.Observe("run", time.Second, fault.Errorf(fault.KindExecutionFailed, "x"))
	e.Observe("build", 30*time.Second, nil)
	e.Observe("build", 31*time.Second, fault.Errorf(fault.KindTimeout, "x"))
	fams := Scrape(t, e.Handler(), "")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"podman_worker_calls_total", map[string]string{"method": "ping", "outcome": "ok"}, 2},
		{"podman_worker_calls_total", map[string]string{"method": "run", "outcome": "executionfailed"}, 1},
		{"podman_worker_calls_total", map[string]string{"method": "metrics", "outcome": "ok"}, 0},
		{"podman_worker_call_duration_seconds", map[string]string{"method": "ping"}, 2},
		{"podman_worker_builds_total", map[string]string{"outcome": "ok"}, 1},
		{"podman_worker_builds_total", map[string]string{"outcome": "timeout"}, 1},
		{"podman_worker_build_duration_seconds", nil, 2},
		{"podman_worker_in_flight", nil, 5},
		{"podman_worker_busy", nil, 2},
		{"podman_worker_queued", nil, 3},
		{"podman_worker_queued_bytes", nil, 1234},
		{"podman_worker_max_queued", nil, 64},
		{"podman_worker_max_queued_bytes", nil, 64 << 20},
		{"podman_worker_max_workers", nil, 8},
		{"podman_worker_warm_containers", nil, 4},
		{"podman_worker_owned_containers", nil, 5},
		{"podman_worker_podman_up", map[string]string{"connection": "default"}, 1},
		{"podman_worker_podman_up", map[string]string{"connection": "remote"}, 0},
		{"podman_worker_podman_latency_seconds", map[string]string{"connection": "default"}, 0.002},
		{"podman_worker_runs_total", map[string]string{"result": "oom", "start": "prewarmed"}, 0},
	} {
		got := value(fams, c.name, c.labels)
		if got == nil || *got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go runtime and process collectors are missing", name)
		}
	}
	// The histogram resolves 1 ms to 10 min.
	h := fams["podman_worker_call_duration_seconds"].Metric[0].Histogram
	if b := h.Bucket; b[0].GetUpperBound() != 0.001 || b[len(b)-2].GetUpperBound() != 600 {
		t.Errorf("buckets %v..%v (then +Inf), want 0.001..600", b[0].GetUpperBound(), b[len(b)-2].GetUpperBound())
	}
}

// Names a caller chooses never become label values: 1,000 calls of
// distinct unknown methods, and runs of distinct images and names, add no
// series after the first.
func TestCardinalityBounded(t *testing.T) {
	f := &fake{statuses: map[string]podman.Status{"default": {Connected: true}}}
	e := f.exporter()
	run := e.WrapRun(func(ctx context.Context, _ json.RawMessage) (any, error) { return struct{ Start string }{"cold"}, nil })
	count := func() int {
		n := 0
		for name, fam := range Scrape(t, e.Handler(), "") {
			if strings.HasPrefix(name, Namespace+"_") {
				n += len(fam.Metric)
			}
		}
		return n
	}
	e.Observe("no-such-method", time.Millisecond, fault.Errorf(fault.KindMethodNotFound, "x"))
	e.Observe("run", time.Millisecond, fault.Errorf(fault.KindNotFound, "no such image img-0"))
	if _, err := run(context.Background(), []byte(`{"image":"img-0","name":"fn-0"}`)); err != nil {
		t.Fatal(err)
	}
	before := count()
	for i := range 1000 {
		e.Observe(fmt.Sprintf("method-%d", i), time.Millisecond, fault.Errorf(fault.KindMethodNotFound, "x"))
		e.Observe("run", time.Millisecond, fault.Errorf(fault.KindNotFound, "no such image img-%d", i))
		if _, err := run(context.Background(), fmt.Appendf(nil, `{"image":"img-%d","name":"fn-%d"}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	after := count()
	if after != before {
		t.Errorf("%d series after 1,000 distinct names, %d before: a caller's names became labels", after, before)
	}
	fams := Scrape(t, e.Handler(), "")
	if v := value(fams, "podman_worker_calls_total", map[string]string{"method": "unknown", "outcome": "methodnotfound"}); v == nil || *v != 1001 {
		t.Errorf("unknown methods counted %v, want 1001 under method=unknown", v)
	}
	for _, m := range fams["podman_worker_calls_total"].Metric {
		for _, l := range m.Label {
			if strings.Contains(l.GetValue(), "-") {
				t.Errorf("label %s=%q", l.GetName(), l.GetValue())
			}
		}
	}
}

func TestRunResult(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	for _, c := range []struct {
		name          string
		ctx           context.Context
		res           any
		err           error
		result, start string
	}{
		{"ok cold", bg, struct{ Start string }{"cold"}, nil, "ok", "cold"},
		{"ok prewarmed pointer", bg, &struct{ Start string }{"prewarmed"}, nil, "ok", "prewarmed"},
		{"failed", bg, nil, fault.Errorf(fault.KindExecutionFailed, "x").With("start", "prewarmed"), "failed", "prewarmed"},
		{"oom", bg, nil, fault.Errorf(fault.KindExecutionFailed, "x").With("oom_killed", true).With("start", "cold"), "oom", "cold"},
		{"sigkill unconfirmed", bg, nil, fault.Errorf(fault.KindExecutionFailed, "x").With("oom_killed", false), "failed", "cold"},
		{"timeout", bg, nil, fault.Errorf(fault.KindTimeout, "x"), "timeout", "cold"},
		{"deadline", bg, nil, context.DeadlineExceeded, "timeout", "cold"},
		{"cancel request", cancelled, nil, context.Canceled, "cancelled", "cold"},
		{"cancelled call, any error", cancelled, nil, errors.New("broken pipe"), "cancelled", "cold"},
		{"refused", bg, nil, fault.Errorf(fault.KindForbidden, "x"), "error", "cold"},
		{"podman", bg, nil, errors.New("boom"), "error", "cold"},
		{"caller's start ignored", bg, struct{ Start string }{"anything"}, nil, "ok", "cold"},
	} {
		result, start := RunResult(c.ctx, c.res, c.err)
		if result != c.result || start != c.start {
			t.Errorf("%s: %s/%s, want %s/%s", c.name, result, start, c.result, c.start)
		}
	}
}

func TestTokenRules(t *testing.T) {
	token := strings.Repeat("a1", 16)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr, file, env, fallback string
		wantErr, wantToken        string
	}{
		{addr: "127.0.0.1:0"},
		{addr: "[::1]:9464"},
		{addr: "localhost:9464"},
		{addr: "0.0.0.0:9464", wantErr: "need a bearer token"},
		{addr: ":9464", wantErr: "need a bearer token"},
		{addr: "0.0.0.0:9464", file: file, wantToken: token},
		{addr: "0.0.0.0:9464", env: token, wantToken: token},
		{addr: "0.0.0.0:9464", fallback: token, wantToken: token},
		{addr: "0.0.0.0:9464", env: "short", wantErr: "at least"},
		{addr: "0.0.0.0:9464", file: file + ".missing", wantErr: "no such file"},
		{addr: "nonsense", wantErr: "HOST:PORT"},
		{file: file, wantErr: "give --metrics-addr"},
	} {
		cfg, err := ParseConfig(c.addr, c.file, c.env, c.fallback)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%+v: error %v, want one saying %q", c, err, c.wantErr)
		case c.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", c, err)
		case c.wantErr == "" && cfg.Token != c.wantToken:
			t.Errorf("%+v: token %q, want %q", c, cfg.Token, c.wantToken)
		}
	}

	e := (&fake{statuses: map[string]podman.Status{}}).exporter()
	h := e.GuardedHandler(token)
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "Bearer wrong-token-of-some-length-000", 401},
		{"GET", "/metrics", "Basic " + token, 401},
		{"GET", "/metrics", "Bearer " + token, 200},
		{"GET", "/metrics", "bearer " + token, 200},
		{"POST", "/metrics", "Bearer " + token, 405},
		{"GET", "/api/v1/health", "Bearer " + token, 404},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s %s %q: %d, want %d", c.method, c.path, c.auth, rec.Code, c.want)
		}
	}
	Scrape(t, h, token)
	// Without a token, only a loopback Host is answered (DNS rebinding).
	open := e.GuardedHandler("")
	for host, want := range map[string]int{"127.0.0.1:9464": 200, "localhost:9464": 200, "[::1]:9464": 200, "evil.example:9464": 403, "192.0.2.1": 403} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		open.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("no token, Host %s: %d, want %d", host, rec.Code, want)
		}
	}
	if !Authorized("Bearer "+token, sha256.Sum256([]byte(token))) {
		t.Error("Authorized refused the token")
	}
}
