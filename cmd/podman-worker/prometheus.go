package main

import (
	"context"
	"net"
	"time"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/promexport"
	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// newExporter makes the Prometheus exporter over the same sources the
// JSON metrics method reads (worker.go), so both report the same numbers.
// a.server is read at scrape time, once run has made it.
func (a *app) newExporter(cfg *config) *promexport.Exporter {
	var names []string
	for name := range a.methodParams() {
		names = append(names, name)
	}
	return promexport.New(promexport.Sources{
		Methods:        names,
		Stats:          func() rpc.Stats { return a.server.Stats() },
		QueuedBytes:    func() int64 { return a.server.QueuedBytes() },
		MaxQueued:      cfg.maxQueued,
		MaxQueuedBytes: cfg.maxQueuedBytes,
		WarmContainers: func() int { return a.svc.Warm().Ready },
		OwnedContainers: func() int {
			n := 0
			for _, c := range a.conns.All() {
				n += c.UsageSnapshot().OwnedContainers
			}
			return n
		},
		Instances: func() promexport.InstanceNumbers {
			in := a.svc.Instances()
			return promexport.InstanceNumbers{Live: in.Live, Idle: in.Idle, Hits: in.Hits, Misses: in.Misses, Discards: in.Discards}
		},
		Statuses:      func(ctx context.Context) map[string]podman.Status { return a.conns.Statuses(ctx) },
		StatusTimeout: statusTimeout,
	})
}

// observe counts a finished call for the JSON metrics and for Prometheus.
func (a *app) observe(method string, took time.Duration, err *fault.Error) {
	a.calls.Observe(method, took, err)
	a.prom.Observe(method, took, err)
}

// serveMetrics serves /metrics on --metrics-addr until the worker stops.
func (a *app) serveMetrics(ctx context.Context, c promexport.Config) (stop func(), err error) {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	// The bound address: with port 0 the kernel picked it.
	a.log.Info().Str("addr", ln.Addr().String()).Bool("token", c.Token != "").Msg("serving metrics")
	return a.prom.Serve(ctx, ln, c.Token), nil
}
