package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
)

// Warm instances (runner/doc.go): a run with reuse is served by a
// container kept from an earlier run of the same spec, which the runner
// inside it gives a clean slate between invocations. The pool holds them
// within one ceiling (--max-instances) for every spec and connection, and
// removes those idle past --instance-idle.

// instanceAllowance is memory added to an instance's limit for the runner
// itself (its resident set, measured ~2 MiB, and the kernel's page tables),
// so that the function has the memory a cold run of its spec would.
const instanceAllowance = 4 << 20

// Discard reasons, for the metrics.
const (
	discardTimeout = "timeout"
	discardOOM     = "oom"
	discardSignal  = "signal"
	discardCancel  = "cancelled"
	discardFault   = "fault"
	discardIdle    = "idle"
	discardEvicted = "evicted"
	discardClosed  = "closed"
)

// InstanceOptions configure the warm instances.
type InstanceOptions struct {
	// Max bounds the instances, of every spec and connection (0: reuse
	// is off and runs that ask for it are served cold).
	Max int
	// Idle is how long an instance may wait for an invocation before it
	// is removed.
	Idle time.Duration
	// Runner is the path of the static runner binary copied into each
	// instance. Read at the first instance; a missing one makes reuse
	// serve cold, with a warning.
	Runner string
}

type instances struct {
	opts InstanceOptions
	log  zerolog.Logger
	life context.Context
	stop context.CancelFunc

	runnerOnce sync.Once
	runnerBin  []byte
	runnerErr  error

	mu       sync.Mutex
	idle     map[string][]*idleInstance // by key, most recently used last
	live     int                        // instances running or starting, idle or busy
	changed  chan struct{}              // closed and replaced whenever an instance is freed or goes
	hits     int64
	misses   int64
	discards map[string]int64
	// failed holds, by key, until when runs of a spec whose instance
	// could not start are served cold without trying again.
	failed  map[string]time.Time
	closed  bool
	sweeper sync.WaitGroup
}

type idleInstance struct {
	inst  *podman.Instance
	key   string
	since time.Time
}

func newInstances(opts InstanceOptions, log zerolog.Logger) *instances {
	life, stop := context.WithCancel(context.Background())
	in := &instances{opts: opts, log: log, life: life, stop: stop, idle: map[string][]*idleInstance{},
		changed: make(chan struct{}), discards: map[string]int64{}, failed: map[string]time.Time{}}
	if opts.Max > 0 && opts.Idle > 0 {
		in.sweeper.Add(1)
		go in.sweep(min(opts.Idle/4, 30*time.Second))
	}
	return in
}

// noStartFor is how long runs of a spec whose instance could not start are
// served cold before an instance is tried again: a broken runner or a full
// disk would otherwise cost every such run a failed start first.
const noStartFor = time.Minute

// startFailed notes that key's instance could not start; expired notes of
// other keys go at the same time, so the map holds only the specs that
// failed within noStartFor.
func (in *instances) startFailed(key string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	now := time.Now()
	for k, until := range in.failed {
		if now.After(until) {
			delete(in.failed, k)
		}
	}
	in.failed[key] = now.Add(noStartFor)
}

// coldOnly says whether key's instance failed to start within noStartFor.
func (in *instances) coldOnly(key string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	until, ok := in.failed[key]
	return ok && time.Now().Before(until)
}

// runner reads the runner binary once.
func (in *instances) runner() ([]byte, error) {
	in.runnerOnce.Do(func() {
		in.runnerBin, in.runnerErr = os.ReadFile(in.opts.Runner)
		if in.runnerErr != nil {
			in.log.Warn().Err(in.runnerErr).Msg("no runner for warm instances: runs with reuse are served cold (build it with make build, or pass --runner)")
		}
	})
	return in.runnerBin, in.runnerErr
}

// instanceKey identifies an instance's spec on a connection: everything
// but the name and the labels. The image is its id: an instance of an
// image a tag no longer names serves no run of that tag.
func instanceKey(client *podman.Client, g *specgen.SpecGenerator) string {
	c := *g
	c.Name = ""
	c.Labels = nil
	keyed, _ := json.Marshal(&c)
	sum := sha256.Sum256(append([]byte(client.Name()+"\x00"), keyed...))
	return hex.EncodeToString(sum[:12])
}

// acquire answers an idle instance of key (a hit), or starts one with
// start when the ceiling allows (a miss), or waits for either. Idle
// instances of other specs are removed to make room before a call waits.
func (in *instances) acquire(ctx context.Context, key string, start func(context.Context) (*podman.Instance, error)) (*podman.Instance, bool, error) {
	for {
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return nil, false, context.Canceled
		}
		if list := in.idle[key]; len(list) > 0 {
			it := list[len(list)-1]
			in.idle[key] = list[:len(list)-1]
			in.mu.Unlock()
			if !it.inst.Usable() {
				in.discard(it.inst, discardFault)
				continue
			}
			in.mu.Lock()
			in.hits++
			in.mu.Unlock()
			return it.inst, true, nil
		}
		ok, changed := in.reserve()
		if !ok {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
		in.mu.Lock()
		in.misses++
		in.mu.Unlock()
		inst, err := start(ctx)
		if err != nil {
			in.gone()
			return nil, false, err
		}
		return inst, false, nil
	}
}

// reserve takes a slot under --max-instances for a new instance, evicting
// the idle instances (of any spec) unused longest to make room. It is
// called with in.mu held and returns with it released: true when the slot
// is taken (counted as live; the caller starts the instance, or calls
// gone), else the channel that closes when an instance is released or
// gone, for a caller that waits.
func (in *instances) reserve() (bool, <-chan struct{}) {
	for in.live >= in.opts.Max {
		victim := in.oldestIdleLocked()
		if victim == nil {
			changed := in.changed
			in.mu.Unlock()
			return false, changed
		}
		in.mu.Unlock()
		in.discard(victim.inst, discardEvicted)
		in.mu.Lock()
	}
	in.live++
	in.mu.Unlock()
	return true, nil
}

// oldestIdleLocked takes the idle instance unused longest, of any spec.
func (in *instances) oldestIdleLocked() *idleInstance {
	var oldest *idleInstance
	for _, list := range in.idle {
		if len(list) > 0 && (oldest == nil || list[0].since.Before(oldest.since)) {
			oldest = list[0]
		}
	}
	if oldest != nil {
		in.idle[oldest.key] = in.idle[oldest.key][1:]
	}
	return oldest
}

// release gives an instance back after a clean invocation.
func (in *instances) release(key string, inst *podman.Instance) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		in.discard(inst, discardClosed)
		return
	}
	in.idle[key] = append(in.idle[key], &idleInstance{inst: inst, key: key, since: time.Now()})
	in.signalLocked()
	in.mu.Unlock()
}

// discard removes an instance that must serve no more invocations.
func (in *instances) discard(inst *podman.Instance, reason string) {
	inst.Close()
	in.mu.Lock()
	in.discards[reason]++
	in.mu.Unlock()
	in.gone()
}

// gone counts an instance out of the ceiling.
func (in *instances) gone() {
	in.mu.Lock()
	in.live--
	in.signalLocked()
	in.mu.Unlock()
}

func (in *instances) signalLocked() {
	close(in.changed)
	in.changed = make(chan struct{})
}

// sweep removes instances idle past opts.Idle, every interval.
func (in *instances) sweep(interval time.Duration) {
	defer in.sweeper.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-in.life.Done():
			return
		case <-t.C:
		}
		var old []*idleInstance
		in.mu.Lock()
		for key, list := range in.idle {
			n := 0
			for n < len(list) && time.Since(list[n].since) > in.opts.Idle {
				n++
			}
			old = append(old, list[:n]...)
			in.idle[key] = list[n:]
		}
		in.mu.Unlock()
		for _, it := range old {
			in.discard(it.inst, discardIdle)
		}
	}
}

// close removes every idle instance; busy ones go when their invocation
// ends (release then discards).
func (in *instances) close() {
	in.mu.Lock()
	in.closed = true
	var all []*idleInstance
	for key, list := range in.idle {
		all = append(all, list...)
		delete(in.idle, key)
	}
	in.mu.Unlock()
	for _, it := range all {
		in.discard(it.inst, discardClosed)
	}
	in.stop()
	in.sweeper.Wait()
}

// InstanceStats are the warm instances' numbers, for metrics.
type InstanceStats struct {
	Max      int              `json:"max"`
	Live     int              `json:"live"`
	Idle     int              `json:"idle"`
	Hits     int64            `json:"hits"`
	Misses   int64            `json:"misses"`
	Discards map[string]int64 `json:"discards"`
}

// Instances answers the warm instances' numbers.
func (s *Service) Instances() InstanceStats {
	in := s.instances
	in.mu.Lock()
	defer in.mu.Unlock()
	st := InstanceStats{Max: in.opts.Max, Live: in.live, Hits: in.hits, Misses: in.misses, Discards: map[string]int64{}}
	for _, list := range in.idle {
		st.Idle += len(list)
	}
	reasons := make([]string, 0, len(in.discards))
	for r := range in.discards {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		st.Discards[r] = in.discards[r]
	}
	return st
}

// startInstance makes an instance of g: the runner as PID 1, the
// function's argv (the spec's entrypoint and command, else the image's)
// after it, the caller's volumes kept as they are between invocations.
func (s *Service) startInstance(ctx context.Context, client *podman.Client, g *specgen.SpecGenerator, img *podman.Image) (*podman.Instance, error) {
	bin, err := s.instances.runner()
	if err != nil {
		return nil, err
	}
	argv := functionArgv(g, img)
	if len(argv) == 0 {
		return nil, fmt.Errorf("the image has no command and the run gives none")
	}
	var keep []string
	for _, v := range g.Volumes {
		keep = append(keep, "--keep", v.Dest)
	}
	for _, m := range g.Mounts {
		if m.Type == "bind" {
			keep = append(keep, "--keep", m.Destination)
		}
	}
	c := *g
	c.Name, _ = checkName("name", "")
	c.Labels = client.Identity.Labels(false)
	// The instance lives past one run: conmon's timeout would end it. The
	// worker enforces each invocation's timeout, and the sweep of a dead
	// worker's containers removes its instances.
	c.Timeout = 0
	if r := c.ResourceLimits; r != nil && r.Memory != nil && r.Memory.Limit != nil {
		limit := *r.Memory.Limit + instanceAllowance
		mem := *r.Memory
		mem.Limit = &limit
		if mem.Swap != nil {
			swap := *mem.Swap + instanceAllowance
			mem.Swap = &swap
		}
		res := *r
		res.Memory = &mem
		c.ResourceLimits = &res
	}
	return client.StartInstance(ctx, s.instances.life, &c, bin, keep, argv)
}

// functionArgv is what a container of g would run: Docker's rules, as
// Podman applies them. An entrypoint given replaces the image's, and then
// the image's command too.
func functionArgv(g *specgen.SpecGenerator, img *podman.Image) []string {
	var entry, cmd []string
	if img != nil && img.Report != nil && img.Report.ImageData != nil && img.Report.ImageData.Config != nil {
		entry, cmd = img.Report.ImageData.Config.Entrypoint, img.Report.ImageData.Config.Cmd
	}
	if g.Entrypoint != nil {
		entry, cmd = g.Entrypoint, nil
	}
	if len(g.Command) > 0 {
		cmd = g.Command
	}
	return append(append([]string{}, entry...), cmd...)
}

// prewarmInstances makes count idle instances of g's spec ready (starting
// the missing ones, removing those past count), for runs with reuse.
func (s *Service) prewarmInstances(ctx context.Context, g *specgen.SpecGenerator, img *podman.Image, count int) (any, error) {
	in := s.instances
	if in.opts.Max <= 0 {
		return nil, fault.Param(fault.KindForbidden, "reuse", "warm instances are off on this worker (--max-instances 0)")
	}
	if count > in.opts.Max {
		return nil, fault.Forbidden("count", "%d instances would pass this worker's ceiling of %d (--max-instances)", count, in.opts.Max)
	}
	if _, err := in.runner(); err != nil {
		return nil, fault.Errorf(fault.KindUnavailable, "warm instances need the runner, which this worker cannot read: %v (build it with make build, or pass --runner)", err)
	}
	client := s.podman(ctx)
	key := instanceKey(client, g)
	in.mu.Lock()
	idle := in.idle[key]
	var drop []*idleInstance
	if len(idle) > count {
		drop = idle[:len(idle)-count]
		in.idle[key] = idle[len(idle)-count:]
	}
	missing := count - len(in.idle[key])
	in.mu.Unlock()
	for _, it := range drop {
		in.discard(it.inst, discardClosed)
	}
	for i := 0; i < missing; i++ {
		inst, err := in.startIdle(ctx, func(ctx context.Context) (*podman.Instance, error) {
			return s.startInstance(ctx, client, g, img)
		})
		if err != nil {
			return nil, err
		}
		in.release(key, inst)
	}
	in.mu.Lock()
	ready := len(in.idle[key])
	in.mu.Unlock()
	return prewarmResult{Warm: ready}, nil
}

// startIdle starts one more instance within the ceiling, removing idle
// instances of other specs to make room; it fails when every instance is
// busy.
func (in *instances) startIdle(ctx context.Context, start func(context.Context) (*podman.Instance, error)) (*podman.Instance, error) {
	in.mu.Lock()
	if ok, _ := in.reserve(); !ok {
		return nil, fault.Errorf(fault.KindBusy, "every warm instance is busy (--max-instances %d): try again when one is free", in.opts.Max)
	}
	inst, err := start(ctx)
	if err != nil {
		in.gone()
	}
	return inst, err
}
