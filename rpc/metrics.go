package rpc

import (
	"sort"
	"sync"
	"time"

	"github.com/podman-worker/podman-worker/fault"
)

// Metrics counts calls per method and keeps a bounded window of recent
// durations for percentiles: memory stays fixed however long the worker
// lives.
type Metrics struct {
	mu      sync.Mutex
	total   int64
	errors  int64
	methods map[string]*methodMetrics
}

// window is how many recent durations each method keeps for p50/p99.
const window = 1024

type methodMetrics struct {
	count, errors int64
	recent        [window]time.Duration
	next          int // ring position
}

// NewMetrics returns an empty collector.
func NewMetrics() *Metrics {
	return &Metrics{methods: map[string]*methodMetrics{}}
}

// Observe records one finished call; it fits Options.Observe.
func (m *Metrics) Observe(method string, took time.Duration, err *fault.Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mm := m.methods[method]
	if mm == nil {
		mm = &methodMetrics{}
		m.methods[method] = mm
	}
	m.total++
	mm.count++
	if err != nil {
		m.errors++
		mm.errors++
	}
	mm.recent[mm.next%window] = took
	mm.next++
}

// MethodSnapshot is one method's figures.
type MethodSnapshot struct {
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
}

// Snapshot is every figure at one moment.
type Snapshot struct {
	RequestsTotal int64                     `json:"requests_total"`
	ErrorsTotal   int64                     `json:"errors_total"`
	Methods       map[string]MethodSnapshot `json:"methods"`
}

// Snapshot copies the figures, with percentiles over each method's window.
func (m *Metrics) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{RequestsTotal: m.total, ErrorsTotal: m.errors, Methods: make(map[string]MethodSnapshot, len(m.methods))}
	for name, mm := range m.methods {
		n := min(mm.next, window)
		d := append([]time.Duration(nil), mm.recent[:n]...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		s.Methods[name] = MethodSnapshot{Count: mm.count, Errors: mm.errors, P50ms: ms(percentile(d, 50)), P99ms: ms(percentile(d, 99))}
	}
	return s
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
