package handlers

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"time"

	"github.com/podman-worker/podman-worker/rpc"
)

// The seed REST API's /health and /metrics, as methods. Neither needs
// Podman to answer: a supervisor asks them precisely when something is wrong.

type podmanHealth struct {
	Connected bool    `json:"connected"`
	Socket    string  `json:"socket"`
	Version   string  `json:"version,omitempty"`
	LatencyMs float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

type healthResult struct {
	Status  string       `json:"status"` // ok, or degraded while Podman does not answer
	Podman  podmanHealth `json:"podman"`
	UptimeS float64      `json:"uptime_s"`
}

func (s *Service) health(ctx context.Context, raw json.RawMessage) (any, error) {
	if err := rpc.DecodeParams(raw, &noParams{}); err != nil {
		return nil, err
	}
	res := healthResult{Status: "ok", Podman: s.PodmanStatus(ctx), UptimeS: s.uptime()}
	if !res.Podman.Connected {
		res.Status = "degraded"
	}
	return res, nil
}

// PodmanStatus pings Podman once and says how it went.
func (s *Service) PodmanStatus(ctx context.Context) podmanHealth {
	h := podmanHealth{Socket: s.podman.URI()}
	start := time.Now()
	pctx, err := s.podman.Context(ctx)
	if err == nil {
		var headers map[string][]string
		if headers, err = s.podman.ping(pctx); err == nil {
			h.Version, _ = versionFromHeaders(headers)
		}
	}
	h.LatencyMs = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		h.Error = s.podman.fromPodman(err).Error()
		return h
	}
	h.Connected = true
	return h
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

func (s *Service) metrics(_ context.Context, raw json.RawMessage) (any, error) {
	if err := rpc.DecodeParams(raw, &noParams{}); err != nil {
		return nil, err
	}
	res := metricsResult{UptimeS: s.uptime(), Goroutines: runtime.NumGoroutine(), Procs: runtime.GOMAXPROCS(0), OpenFDs: openFDs(), OwnedContainers: s.owned.count()}
	if s.calls != nil {
		res.Snapshot = s.calls.Snapshot()
	}
	if s.load != nil {
		res.Workers = s.load()
		res.InFlight = res.Workers.Busy + res.Workers.Queued
	}
	return res, nil
}

func (s *Service) uptime() float64 {
	return time.Since(s.started).Round(time.Millisecond).Seconds()
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries) - 1 // the descriptor ReadDir itself held open
}

type shutdownResult struct {
	Status string `json:"status"`
}

// shutdownMethod answers, then shuts the worker down as SIGTERM does:
// no new calls, the grace period for calls in flight, containers removed.
func (s *Service) shutdownMethod(_ context.Context, raw json.RawMessage) (any, error) {
	if err := rpc.DecodeParams(raw, &noParams{}); err != nil {
		return nil, err
	}
	if s.shutdown == nil {
		return nil, rpc.Errorf(rpc.KindUnavailable, "this worker cannot be shut down by a call")
	}
	// After this call's own reply: Shutdown waits for calls in flight,
	// this one included.
	go s.shutdown()
	return shutdownResult{Status: "shutting down"}, nil
}
