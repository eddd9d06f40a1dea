package main

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/promexport"
	"github.com/podman-worker/podman-worker/handlers"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// app is the running worker process: the dispatcher, the Podman connections
// and the handlers. Its own methods (health, metrics, shutdown) describe the
// process rather than Podman, so they live here, next to what they report.
// The seed REST API's /health and /metrics, as methods: neither needs
// Podman to answer, since a supervisor asks them precisely when something
// is wrong.
type app struct {
	server  *rpc.Server
	conns   *podman.Connections
	svc     *handlers.Service
	calls   *rpc.Metrics
	prom    *promexport.Exporter
	log     zerolog.Logger
	started time.Time
	grace   time.Duration
	pid     int
}

// methods is every method the worker answers: its own and the handlers'.
func (a *app) methods() map[string]rpc.Method {
	m := a.svc.Methods()
	m["health"] = a.health
	m["metrics"] = a.metrics
	m["shutdown"] = a.shutdown
	if a.prom != nil && m["run"] != nil {
		m["run"] = a.prom.WrapRun(m["run"]) // runs_total{result,start}
	}
	return m
}

// methodParams maps every method to a pointer to its zero params struct.
func (a *app) methodParams() map[string]any {
	p := a.svc.Params()
	for _, name := range []string{"health", "metrics", "shutdown"} {
		p[name] = &handlers.NoParams{}
	}
	return p
}

type healthResult struct {
	// Status is ok, or degraded while the default connection's Podman does
	// not answer. Another connection being down leaves it ok: calls to the
	// others are served in full, and restarting the worker would not bring
	// a host back; Connections says which one is down.
	Status string `json:"status"`
	// Podman is the default connection's status, Connections every one's.
	Podman            podman.Status            `json:"podman"`
	DefaultConnection string                   `json:"default_connection"`
	Connections       map[string]podman.Status `json:"connections"`
	UptimeS           float64                  `json:"uptime_s"`
	// WarmErrors lists the prewarm pools that cannot be refilled, and why
	// (the image is gone, a limit changed): their runs go cold meanwhile.
	WarmErrors []handlers.WarmPool `json:"warm_errors,omitempty"`
}

func (a *app) health(ctx context.Context, raw json.RawMessage) (any, error) {
	if err := noParams(raw); err != nil {
		return nil, err
	}
	res := healthResult{Status: "ok", DefaultConnection: a.conns.Default().Name(), Connections: a.podmanStatus(ctx), UptimeS: a.uptime()}
	res.Podman = res.Connections[res.DefaultConnection]
	for _, p := range a.svc.Warm().Pools {
		if p.Error != "" {
			res.WarmErrors = append(res.WarmErrors, p)
		}
	}
	if !res.Podman.Connected {
		res.Status = "degraded"
	}
	return res, nil
}

type metricsResult struct {
	UptimeS  float64 `json:"uptime_s"`
	InFlight int64   `json:"in_flight"`
	rpc.Snapshot
	Workers rpc.Stats `json:"workers"`
	// Process figures, for leak checks: after a burst of calls they
	// return to their idle level.
	Goroutines      int `json:"goroutines"`
	Procs           int `json:"procs"` // GOMAXPROCS: 1 unless the environment set it
	OpenFDs         int `json:"open_fds"`
	OwnedContainers int `json:"owned_containers"` // of every connection
	// Connections counts calls and owned containers per connection.
	Connections map[string]podman.UsageSnapshot `json:"connections"`
	// Warm is the prewarm pools: sizes, hits and misses.
	Warm handlers.WarmStats `json:"warm"`
	// Instances is the warm instances: live (busy or idle), idle, hits,
	// misses and discards by reason.
	Instances handlers.InstanceStats `json:"instances"`
	// Runs counts the runs by how their container was started: "cold",
	// "prewarmed", "reused".
	Runs map[string]int64 `json:"runs"`
}

func (a *app) metrics(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noParams(raw); err != nil {
		return nil, err
	}
	res := metricsResult{
		UptimeS: a.uptime(), Snapshot: a.calls.Snapshot(), Workers: a.server.Stats(),
		Goroutines: runtime.NumGoroutine(), Procs: runtime.GOMAXPROCS(0), OpenFDs: openFDs(),
		Connections: map[string]podman.UsageSnapshot{}, Warm: a.svc.Warm(), Runs: a.svc.RunStarts(),
		Instances: a.svc.Instances(),
	}
	for _, c := range a.conns.All() {
		u := c.UsageSnapshot()
		res.Connections[c.Name()] = u
		res.OwnedContainers += u.OwnedContainers
	}
	res.InFlight = res.Workers.Busy + res.Workers.Queued
	return res, nil
}

type shutdownResult struct {
	Status string `json:"status"`
}

// shutdown answers, then shuts the worker down as SIGTERM does: no new
// calls, the grace period for calls in flight, containers removed.
func (a *app) shutdown(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noParams(raw); err != nil {
		return nil, err
	}
	a.log.Info().Dur("grace", a.grace).Msg("shutdown requested by a call")
	// After this call's own reply: Shutdown waits for calls in flight,
	// this one included.
	go a.server.Shutdown(a.grace)
	return shutdownResult{Status: "shutting down"}, nil
}

// readyParams is the worker.ready notification: the first line the worker
// writes, once it can serve.
type readyParams struct {
	Version           string                   `json:"version"`
	PID               int                      `json:"pid"`
	Podman            podman.Status            `json:"podman"` // the default connection's
	DefaultConnection string                   `json:"default_connection"`
	Connections       map[string]podman.Status `json:"connections"`
}

func (a *app) ready(ctx context.Context) func() (string, any) {
	return func() (string, any) {
		r := readyParams{Version: version, PID: a.pid, DefaultConnection: a.conns.Default().Name(), Connections: a.podmanStatus(ctx)}
		r.Podman = r.Connections[r.DefaultConnection]
		return "worker.ready", r
	}
}

// statusTimeout is how long health and worker.ready wait for Podman: a
// supervisor asks for health to decide whether to restart the worker, so
// it gets an answer (degraded, saying why) rather than a hang when Podman
// accepts connections and never answers. Connections are pinged at once,
// so that is the bound however many there are.
const statusTimeout = time.Second

func (a *app) podmanStatus(ctx context.Context) map[string]podman.Status {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return a.conns.Statuses(ctx)
}

func (a *app) uptime() float64 {
	return time.Since(a.started).Round(time.Millisecond).Seconds()
}

func noParams(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	return rpc.DecodeParams(raw, &handlers.NoParams{})
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries) - 1 // the descriptor ReadDir itself held open
}
