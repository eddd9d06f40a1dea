// Package handlers implements the worker's methods that act on Podman: one
// file per method group, each handler decoding its params, applying the
// policy, calling the Podman layer (package podman) and shaping the seed's
// result. The worker's own methods (health, metrics, shutdown) live with
// the worker in cmd/podman-worker.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// Options configure the handlers; zero values take the defaults.
type Options struct {
	// Policy caps what callers may ask for (memory, cpus, timeout, pids,
	// network modes).
	Policy limits.Policy
	// MaxOutputBytes bounds each output stream a call returns (default 1 MiB).
	MaxOutputBytes int
	// RequestTimeout bounds every call that has no timeout of its own
	// (default 30 s, the seed REST API's REQUEST_TIMEOUT).
	RequestTimeout time.Duration
	// MaxWarm bounds the prewarmed containers, of every spec together
	// (0: prewarm is refused).
	MaxWarm int
	// MaxInputBytes bounds a run's input (default 6 MiB).
	MaxInputBytes int
	// Instances configure the warm instances that serve runs with reuse.
	Instances InstanceOptions
	// Registries are the registries pull and push may use, and copy_image's
	// ceiling.
	Registries Registries
}

// Service holds what handlers share: the Podman connections and the
// policy.
type Service struct {
	conns *podman.Connections
	// identity labels every container made, whichever connection it is
	// made through: all of them share the worker's identity.
	identity  podman.Identity
	log       zerolog.Logger
	policy    limits.Policy
	maxOutput int
	timeout   time.Duration
	warm      *warmPools
	instances *instances
	// state keeps what the worker wrote into long-lived containers'
	// in-memory folders, to write it again after a stop (state.go).
	state *stateJournal
	// maxInput bounds a run's input.
	maxInput int
	// registries are the operator's registries (registry.go).
	registries Registries
	// createMu makes create's count and create one step (--max-containers).
	createMu sync.Mutex
	// starts counts runs by how their container was started.
	starts sync.Map // string -> *atomic.Int64
}

// New returns the handlers for the worker's Podman connections.
func New(conns *podman.Connections, log zerolog.Logger, opts Options) *Service {
	if opts.Policy.MaxMemory == 0 {
		opts.Policy = limits.DefaultPolicy()
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = 1 << 20
	}
	if opts.MaxInputBytes <= 0 {
		opts.MaxInputBytes = DefaultMaxInputBytes
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	s := &Service{conns: conns, log: log, policy: opts.Policy, maxOutput: opts.MaxOutputBytes, timeout: opts.RequestTimeout,
		warm: newWarmPools(opts.MaxWarm, opts.MaxOutputBytes, log), state: newStateJournal(), maxInput: opts.MaxInputBytes,
		instances: newInstances(opts.Instances, log), registries: opts.Registries}
	if conns != nil {
		s.identity = conns.Default().Identity
	}
	return s
}

// DefaultMaxInputBytes is --max-input-bytes' default: AWS Lambda's bound
// on a synchronous invocation's payload.
const DefaultMaxInputBytes = 6 << 20

func (s *Service) countStart(start string) {
	n, _ := s.starts.LoadOrStore(start, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

// RunStarts counts the runs by how their container was started (cold,
// prewarmed), for metrics.
func (s *Service) RunStarts() map[string]int64 {
	out := map[string]int64{"cold": 0, "prewarmed": 0, "reused": 0}
	s.starts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// podman is the connection the call chose (its `connection` param, or the
// default), which adapt put in the handler's context.
func (s *Service) podman(ctx context.Context) *podman.Client { return podman.From(ctx) }

// CommonParams are the params every method of the registry accepts besides
// its own. They are decoded apart (rpc.DecodeParams' shared params), so no
// method's params struct repeats them.
type CommonParams struct {
	// Connection names the Podman connection the call uses; "" is the
	// default one.
	Connection string `json:"connection"`
}

// method is one entry of the registry: the handler and its params type.
type method struct {
	call   rpc.Method
	params any // a pointer to the zero params struct
}

// registry lists every method that acts on Podman, in one place.
func (s *Service) registry() map[string]method {
	return map[string]method{
		// system.go
		"ping":    adapt(s, s.ping),
		"version": adapt(s, s.version),
		"info":    adapt(s, s.info),
		// images.go, build.go
		"build":   adapt(s, s.build),
		"images":  adapt(s, s.images),
		"exists":  adapt(s, s.exists),
		"inspect": adapt(s, s.inspect),
		"rmi":     adapt(s, s.rmi),
		"prune":   adapt(s, s.prune),
		// registry.go
		"pull":       adapt(s, s.pull),
		"push":       adapt(s, s.push),
		"copy_image": adapt(s, s.copyImage),
		// run.go, warm.go, containers.go
		"run":     adapt(s, s.run),
		"prewarm": adapt(s, s.prewarm),
		"create":  adapt(s, s.create),
		"start":   adapt(s, s.start),
		"stop":    adapt(s, s.stop),
		"logs":    adapt(s, s.logs),
		"ps":      adapt(s, s.ps),
		"kill":    adapt(s, s.kill),
		"rm":      adapt(s, s.rm),
		// exec.go, files.go, users.go
		"exec":     adapt(s, s.exec),
		"add_file": adapt(s, s.addFile),
		"add_user": adapt(s, s.addUser),
	}
}

// Methods maps each method name to its handler.
func (s *Service) Methods() map[string]rpc.Method {
	out := map[string]rpc.Method{}
	for name, m := range s.registry() {
		out[name] = m.call
	}
	return out
}

// Params maps each method name to a pointer to its zero params struct, so
// documentation and tests can list the params every method accepts.
func (s *Service) Params() map[string]any {
	out := map[string]any{}
	for name, m := range s.registry() {
		out[name] = m.params
	}
	return out
}

// adapt turns a typed handler into an rpc.Method: it decodes params into P
// and the common params (refusing unknown and missing fields; methods
// without params skip the decoding of absent params), picks the connection
// the call named, bounds calls that have no timeout of their own by the
// request timeout, hands the handler a context that carries that
// connection, and classifies what Podman answered.
func adapt[P any](s *Service, fn func(ctx context.Context, p P) (any, error)) method {
	var zero P
	noParams := reflect.TypeOf(zero).NumField() == 0
	_, ownTimeout := any(&zero).(bindsItself)
	call := func(ctx context.Context, raw json.RawMessage) (res any, err error) {
		var p P
		var common CommonParams
		if !noParams || len(raw) > 0 {
			if err := rpc.DecodeParams(raw, &p, &common); err != nil {
				return nil, err
			}
		}
		client, err := s.conns.Get(common.Connection)
		if err != nil {
			return nil, err
		}
		end := client.Usage.Begin()
		defer func() { end(err != nil) }()
		if !ownTimeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, s.timeout, errRequestTimeout)
			defer cancel()
		}
		pctx, err := client.Context(ctx)
		if err != nil {
			return nil, err
		}
		res, err = fn(pctx, p)
		if err != nil && errors.Is(context.Cause(ctx), errRequestTimeout) {
			return nil, fault.Wrap(fault.KindTimeout, err, "the call did not finish within the request timeout of %s (--request-timeout / REQUEST_TIMEOUT)", s.timeout)
		}
		return res, client.Classify(err)
	}
	return method{call: call, params: &zero}
}

var errRequestTimeout = errors.New("request timeout")

// bindsItself marks params of methods that bound themselves (run's timeout)
// or may legitimately run long (build); the request timeout skips them.
type bindsItself interface{ bindsItself() }

func (*runParams) bindsItself()   {}
func (*buildParams) bindsItself() {}

// NoParams is the params of methods that take none; anything sent is refused.
type NoParams struct{}

// containerParam names, for each method that names a container, the
// params field that does (rm takes either).
var containerParam = map[string][]string{
	"run": {"name"}, "create": {"name"}, "start": {"name"}, "stop": {"name"}, "logs": {"name"},
	"exec": {"name"}, "add_file": {"name"}, "add_user": {"name"},
	"kill": {"container"}, "rm": {"container", "name"},
}

// ContainerKey is the worker's rpc.Options.Order: calls that name the same
// container run one after another, in the order they arrived, so that two
// runs with one name, or a create and an rm sent together, are decided by
// arrival and not by which reached Podman first. A run without a name gets
// a fresh one and orders with nothing.
func ContainerKey(method string, params json.RawMessage) string {
	for _, field := range containerParam[method] {
		var name string
		if v := rpc.Member(params, field); v != nil && json.Unmarshal(v, &name) == nil && name != "" {
			return "container:" + name
		}
	}
	return ""
}
