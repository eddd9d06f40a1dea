// Package handlers implements the worker's methods: one file per command
// group, each handler decoding its params, calling Podman through the
// bindings and shaping the seed's result.
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/rpc"
)

// Options configure the handlers; zero values take the defaults.
type Options struct {
	// Policy caps what callers may ask for (memory, cpus, timeout, pids,
	// network modes).
	Policy limits.Policy
	// MaxOutputBytes bounds each output stream a call returns (default 1 MiB).
	MaxOutputBytes int
	// Calls and Load feed the metrics method: per-method figures, and the
	// dispatcher's running and waiting calls.
	Calls *rpc.Metrics
	Load  func() rpc.Stats
	// RequestTimeout bounds every call that has no timeout of its own
	// (default 30 s, the seed REST API's REQUEST_TIMEOUT).
	RequestTimeout time.Duration
	// Shutdown, when set, is what the shutdown method starts.
	Shutdown func()
}

// Service holds what handlers share: the warm Podman connection, the
// policy, and the containers this worker owns.
type Service struct {
	podman    *Podman
	log       zerolog.Logger
	policy    limits.Policy
	maxOutput int
	calls     *rpc.Metrics
	load      func() rpc.Stats
	started   time.Time
	timeout   time.Duration
	shutdown  func()
	// instance labels this worker's containers (LabelInstance).
	instance string

	owned    ownedSet
	removals sync.WaitGroup
}

// New returns the handlers for a Podman connection.
func New(p *Podman, log zerolog.Logger, opts Options) *Service {
	if opts.Policy.MaxMemory == 0 {
		opts.Policy = limits.DefaultPolicy()
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = 1 << 20
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Service{
		podman: p, log: log, policy: opts.Policy, maxOutput: opts.MaxOutputBytes,
		calls: opts.Calls, load: opts.Load, started: time.Now(), instance: hex.EncodeToString(b),
		timeout: opts.RequestTimeout, shutdown: opts.Shutdown,
	}
}

// Methods lists every method the worker answers, in one place.
func (s *Service) Methods() map[string]rpc.Method {
	return map[string]rpc.Method{
		// health.go: answer even when Podman does not
		"health":   s.health,
		"metrics":  s.metrics,
		"shutdown": s.shutdownMethod,
		// system.go
		"ping":    podmanMethod(s, s.ping),
		"version": podmanMethod(s, s.version),
		"info":    podmanMethod(s, s.info),
		// images.go, build.go
		"build":   podmanMethod(s, s.build),
		"images":  podmanMethod(s, s.images),
		"exists":  podmanMethod(s, s.exists),
		"inspect": podmanMethod(s, s.inspect),
		"rmi":     podmanMethod(s, s.rmi),
		"prune":   podmanMethod(s, s.prune),
		// run.go, containers.go
		"run":    podmanMethod(s, s.run),
		"create": podmanMethod(s, s.create),
		"start":  podmanMethod(s, s.start),
		"stop":   podmanMethod(s, s.stop),
		"logs":   podmanMethod(s, s.logs),
		"ps":     podmanMethod(s, s.ps),
		"kill":   podmanMethod(s, s.killMethod),
		"rm":     podmanMethod(s, s.rm),
		// host.go, passwd.go
		"exec":     podmanMethod(s, s.exec),
		"add_file": podmanMethod(s, s.addFile),
		"add_user": podmanMethod(s, s.addUser),
	}
}

// podmanMethod adapts a typed handler: it decodes params into P (refusing
// unknown and missing fields), hands the handler a context that carries the
// Podman connection, and classifies what Podman answered.
func podmanMethod[P any](s *Service, fn func(ctx context.Context, p P) (any, error)) rpc.Method {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p P
		if err := rpc.DecodeParams(raw, &p); err != nil {
			return nil, err
		}
		if _, own := any(&p).(ownTimeout); !own {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, s.timeout, errRequestTimeout)
			defer cancel()
		}
		pctx, err := s.podman.Context(ctx)
		if err != nil {
			return nil, err
		}
		res, err := fn(pctx, p)
		if err != nil && errors.Is(context.Cause(ctx), errRequestTimeout) {
			return nil, rpc.Wrap(rpc.KindTimeout, err, "the call did not finish within the request timeout of %s (--request-timeout / REQUEST_TIMEOUT)", s.timeout)
		}
		return res, s.podman.fromPodman(err)
	}
}

var errRequestTimeout = errors.New("request timeout")

// ownTimeout marks params of methods that bound themselves (run's timeout)
// or may legitimately run long (build); the request timeout skips them.
type ownTimeout interface{ ownTimeout() }

func (*runParams) ownTimeout()   {}
func (*buildParams) ownTimeout() {}

// noParams is the params of methods that take none; anything sent is refused.
type noParams struct{}
