package promexport

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// Namespace prefixes every family the worker exports.
const Namespace = "podman_worker"

// Buckets resolve a call's duration from 1 ms (a ping) to 10 min (the
// longest run or build timeout an operator usually allows).
var Buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Run results and starts: closed lists, so runs_total has at most
// len(RunResults)*len(RunStarts) series. "reused" is a run a warm
// instance served.
var (
	RunResults = []string{"ok", "failed", "timeout", "oom", "cancelled", "error"}
	RunStarts  = []string{"cold", "prewarmed", "reused"}
	// DiscardReasons are why a warm instance was removed (handlers).
	DiscardReasons = []string{"timeout", "oom", "signal", "cancelled", "fault", "idle", "evicted", "closed"}
)

// InstanceNumbers are the warm instances' figures.
type InstanceNumbers struct {
	Live, Idle   int
	Hits, Misses int64
	Discards     map[string]int64
}

// Sources are the functions the exporter reads at scrape time: the same
// ones the JSON metrics method reads.
type Sources struct {
	// Methods is the registry's fixed set of method names; any other name
	// is counted as "unknown".
	Methods []string
	// Stats is the dispatcher's load: busy and queued calls.
	Stats func() rpc.Stats
	// QueuedBytes is what the calls waiting for a worker slot hold.
	QueuedBytes func() int64
	// MaxQueued and MaxQueuedBytes are the queue's bounds, exported so an
	// alert can compare the queue with them.
	MaxQueued      int
	MaxQueuedBytes int64
	// WarmContainers is how many prewarmed containers are ready.
	WarmContainers func() int
	// OwnedContainers is how many containers the worker owns, on every
	// connection.
	OwnedContainers func() int
	// Instances reads the warm instances' figures.
	Instances func() InstanceNumbers
	// Statuses pings every connection within ctx.
	Statuses func(ctx context.Context) map[string]podman.Status
	// StatusTimeout bounds the pings of one scrape (default 1 s).
	StatusTimeout time.Duration
}

// Exporter holds the worker's Prometheus registry.
type Exporter struct {
	reg       *prometheus.Registry
	methods   map[string]bool
	calls     *prometheus.CounterVec
	durations *prometheus.HistogramVec
	runs      *prometheus.CounterVec
	builds    *prometheus.CounterVec
	buildDur  prometheus.Histogram
	handler   http.Handler
}

// New registers every family, the Go runtime's and the process's
// collectors included.
func New(src Sources) *Exporter {
	if src.StatusTimeout <= 0 {
		src.StatusTimeout = time.Second
	}
	e := &Exporter{
		reg:     prometheus.NewRegistry(),
		methods: map[string]bool{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "calls_total",
			Help: "Calls finished, by method (unknown for names the worker does not serve) and outcome (ok, or the error type in lower case)."},
			[]string{"method", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "call_duration_seconds",
			Help: "How long calls took, from being read to being answered (queue wait included), by method.", Buckets: Buckets},
			[]string{"method"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "runs_total",
			Help: "Runs finished, by result (ok, failed, timeout, oom, cancelled, error) and how their container started (cold, prewarmed, reused)."},
			[]string{"result", "start"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "builds_total",
			Help: "Image builds finished, by outcome (ok, or the error type in lower case)."},
			[]string{"outcome"}),
		buildDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "build_duration_seconds",
			Help: "How long image builds took.", Buckets: Buckets}),
	}
	for _, m := range src.Methods {
		e.methods[m] = true
		e.calls.WithLabelValues(m, "ok") // every method listed from the start, at 0
	}
	for _, r := range RunResults {
		for _, s := range RunStarts {
			e.runs.WithLabelValues(r, s)
		}
	}
	e.builds.WithLabelValues("ok")
	e.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		e.calls, e.durations, e.runs, e.builds, e.buildDur,
		&gauges{src: src},
	)
	e.handler = promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{
		// A scrape that fails in part still answers what it could.
		ErrorHandling: promhttp.ContinueOnError,
		// More scrapes at once than this are answered 503 rather than
		// piling up on Podman's pings.
		MaxRequestsInFlight: 4,
	})
	return e
}

// Registry is the registry behind the handler, for tests.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// Handler answers GET /metrics in the text format (or OpenMetrics, as the
// scraper negotiates). It checks no token: Serve and the HTTP API do.
func (e *Exporter) Handler() http.Handler { return e.handler }

// Observe counts one finished call; it is called from the dispatcher's
// Options.Observe next to the JSON metrics' own Observe.
func (e *Exporter) Observe(method string, took time.Duration, err *fault.Error) {
	if !e.methods[method] {
		method = "unknown"
	}
	outcome := Outcome(err)
	e.calls.WithLabelValues(method, outcome).Inc()
	e.durations.WithLabelValues(method).Observe(took.Seconds())
	if method == "build" {
		e.builds.WithLabelValues(outcome).Inc()
		e.buildDur.Observe(took.Seconds())
	}
}

// Outcome is "ok" for a success, else the error's type in lower case.
func Outcome(err *fault.Error) string {
	if err == nil {
		return "ok"
	}
	return strings.ToLower(rpc.Type(err.Kind))
}

// WrapRun counts each run by result and start. The start comes from the
// run's answer: its result's Start, or the start field of its error's
// data; an answer that says nothing (a refused call, a timeout) counts as
// cold.
func (e *Exporter) WrapRun(run rpc.Method) rpc.Method {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		res, err := run(ctx, params)
		result, start := RunResult(ctx, res, err)
		e.runs.WithLabelValues(result, start).Inc()
		return res, err
	}
}

// RunResult classifies a run's answer as the dispatcher will: a context
// error is a timeout or a cancellation, ExecutionFailed is oom when the
// worker confirmed an OOM kill and failed otherwise.
func RunResult(ctx context.Context, res any, err error) (result, start string) {
	start = "cold"
	if err == nil {
		if s := startOf(res); s == "prewarmed" || s == "reused" {
			start = s
		}
		return "ok", start
	}
	re := fault.As(err)
	if s, _ := re.Fields["start"].(string); s == "prewarmed" || s == "reused" {
		start = s
	}
	switch {
	case re.Kind == fault.KindTimeout:
		return "timeout", start
	case re.Kind == fault.KindCancelled || ctx.Err() != nil:
		return "cancelled", start
	case re.Kind == fault.KindExecutionFailed:
		if oom, _ := re.Fields["oom_killed"].(bool); oom {
			return "oom", start
		}
		return "failed", start
	}
	return "error", start
}

// startOf reads the Start field of a run's result struct.
func startOf(res any) string {
	v := reflect.ValueOf(res)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	f := v.FieldByName("Start")
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}

// gauges reads the worker's current state at each scrape.
type gauges struct{ src Sources }

var (
	descInFlight    = prometheus.NewDesc(Namespace+"_in_flight", "Calls running or waiting for a worker slot (the JSON metrics' in_flight).", nil, nil)
	descBusy        = prometheus.NewDesc(Namespace+"_busy", "Calls holding a worker slot.", nil, nil)
	descMaxWorkers  = prometheus.NewDesc(Namespace+"_max_workers", "Worker slots (--max-workers).", nil, nil)
	descQueued      = prometheus.NewDesc(Namespace+"_queued", "Calls waiting for a worker slot.", nil, nil)
	descQueuedBytes = prometheus.NewDesc(Namespace+"_queued_bytes", "Bytes of the requests waiting for a worker slot.", nil, nil)
	descMaxQueued   = prometheus.NewDesc(Namespace+"_max_queued", "Calls that may wait for a worker slot (--max-queued).", nil, nil)
	descMaxQBytes   = prometheus.NewDesc(Namespace+"_max_queued_bytes", "Bytes the waiting calls may hold (--max-queued-bytes).", nil, nil)
	descWarm        = prometheus.NewDesc(Namespace+"_warm_containers", "Prewarmed containers ready to take a run.", nil, nil)
	descOwned       = prometheus.NewDesc(Namespace+"_owned_containers", "Containers the worker owns, on every connection.", nil, nil)
	descInstances   = prometheus.NewDesc(Namespace+"_instances", "Warm instances, by state: busy (serving an invocation or starting) or idle.", []string{"state"}, nil)
	descLookups     = prometheus.NewDesc(Namespace+"_instance_lookups_total", "Runs with reuse, by whether an idle instance served them (hit) or one was started (miss).", []string{"result"}, nil)
	descDiscards    = prometheus.NewDesc(Namespace+"_instance_discards_total", "Warm instances removed, by reason (timeout, oom, signal, cancelled, fault, idle, evicted, closed).", []string{"reason"}, nil)
	descUp          = prometheus.NewDesc(Namespace+"_podman_up", "1 when the connection's Podman answered a ping during this scrape, else 0.", []string{"connection"}, nil)
	descLatency     = prometheus.NewDesc(Namespace+"_podman_latency_seconds", "How long the connection's Podman took to answer this scrape's ping.", []string{"connection"}, nil)
)

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInFlight, descBusy, descMaxWorkers, descQueued, descQueuedBytes, descMaxQueued, descMaxQBytes, descWarm, descOwned, descInstances, descLookups, descDiscards, descUp, descLatency} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := g.src.Stats()
	gauge(descInFlight, float64(st.Busy+st.Queued))
	gauge(descBusy, float64(st.Busy))
	gauge(descMaxWorkers, float64(st.MaxWorkers))
	gauge(descQueued, float64(st.Queued))
	gauge(descQueuedBytes, float64(g.src.QueuedBytes()))
	gauge(descMaxQueued, float64(g.src.MaxQueued))
	gauge(descMaxQBytes, float64(g.src.MaxQueuedBytes))
	gauge(descWarm, float64(g.src.WarmContainers()))
	gauge(descOwned, float64(g.src.OwnedContainers()))
	if g.src.Instances != nil {
		in := g.src.Instances()
		gauge(descInstances, float64(in.Live-in.Idle), "busy")
		gauge(descInstances, float64(in.Idle), "idle")
		counter := func(d *prometheus.Desc, v int64, label string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
		}
		counter(descLookups, in.Hits, "hit")
		counter(descLookups, in.Misses, "miss")
		for _, r := range DiscardReasons {
			counter(descDiscards, in.Discards[r], r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.src.StatusTimeout)
	defer cancel()
	for name, s := range g.src.Statuses(ctx) {
		up := 0.0
		if s.Connected {
			up = 1
		}
		gauge(descUp, up, name)
		gauge(descLatency, s.LatencyMs/1000, name)
	}
}
