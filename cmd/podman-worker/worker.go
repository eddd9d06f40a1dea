package main

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/httpapi"
	"github.com/podman-worker/podman-worker/handlers"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// app is the running worker process: the dispatcher, the Podman connection and
// the handlers. Its own methods (health, metrics, shutdown) describe the
// process rather than Podman, so they live here, next to what they report.
// The seed REST API's /health and /metrics, as methods: neither needs
// Podman to answer, since a supervisor asks them precisely when something
// is wrong.
type app struct {
	server  *rpc.Server
	podman  *podman.Client
	svc     *handlers.Service
	calls   *rpc.Metrics
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

// direct calls methods in this process without the dispatcher, as one
// call of the per-call CLI needs, counting each in metrics. The HTTP API
// uses it too until the dispatcher takes calls from other transports.
func (a *app) direct() httpapi.Caller {
	methods := a.methods()
	return func(ctx context.Context, method string, params json.RawMessage) (any, error) {
		m, ok := methods[method]
		if !ok {
			return nil, rpc.Errorf(rpc.KindMethodNotFound, "Method not found: %s", method)
		}
		start := time.Now()
		res, err := m(ctx, params)
		var rerr *rpc.Error
		if err != nil {
			rerr = rpc.AsError(err)
		}
		a.calls.Observe(method, time.Since(start), rerr)
		return res, err
	}
}

type healthResult struct {
	Status  string        `json:"status"` // ok, or degraded while Podman does not answer
	Podman  podman.Status `json:"podman"`
	UptimeS float64       `json:"uptime_s"`
}

func (a *app) health(ctx context.Context, raw json.RawMessage) (any, error) {
	if err := noParams(raw); err != nil {
		return nil, err
	}
	res := healthResult{Status: "ok", Podman: a.podman.Status(ctx), UptimeS: a.uptime()}
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
	OwnedContainers int `json:"owned_containers"`
}

func (a *app) metrics(_ context.Context, raw json.RawMessage) (any, error) {
	if err := noParams(raw); err != nil {
		return nil, err
	}
	res := metricsResult{
		UptimeS: a.uptime(), Snapshot: a.calls.Snapshot(), Workers: a.server.Stats(),
		Goroutines: runtime.NumGoroutine(), Procs: runtime.GOMAXPROCS(0), OpenFDs: openFDs(),
		OwnedContainers: a.podman.Owned.Count(),
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
	Version string        `json:"version"`
	PID     int           `json:"pid"`
	Podman  podman.Status `json:"podman"`
}

func (a *app) ready(ctx context.Context) func() (string, any) {
	return func() (string, any) {
		return "worker.ready", readyParams{Version: version, PID: a.pid, Podman: a.podman.Status(ctx)}
	}
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
