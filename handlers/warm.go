package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
)

// Prewarmed containers, single use, as serverless platforms keep them
// (OpenWhisk's prewarm pools, Lambda's provisioned concurrency): most of a
// run's time is Podman setting the container's process up (create, then
// runc create when it is attached to), which a container made ahead of
// time has behind it. A run whose spec matches a pool takes one, starts
// it, and the pool makes a replacement in the background. Each container
// serves one run and is removed after it, like any run's, so nothing
// passes from one invocation to the next; and it is made from the same
// spec as a cold run's, so every rule of the sandbox holds for it.

type prewarmParams struct {
	RunSpec
	// Count is how many containers of this spec to keep ready; 0 drains.
	Count *int `json:"count"`
	// Reuse starts warm instances of the spec instead (instances.go):
	// Count idle ones, for runs with reuse.
	Reuse bool `json:"reuse"`
}

type prewarmResult struct {
	Warm int `json:"warm"`
}

// warmPools holds the pools, one per spec and connection, within one
// ceiling for all of them (--max-warm).
type warmPools struct {
	max       int // containers ready or being made, in all pools
	maxOutput int // kept per stream of a prewarmed container's output
	log       zerolog.Logger

	mu    sync.Mutex
	pools map[string]*warmPool
	// suspended counts, per connection, the image operations under way
	// (rmi, prune) during which its pools make no container: a new one
	// would hold the image. Other connections' pools go on.
	suspended map[*podman.Client]int
	life      context.Context // ends at Close: every pool's attach ends with it
	stop      context.CancelFunc
	fills     sync.WaitGroup
}

// warmPool is the stock of one spec on one connection.
type warmPool struct {
	key, image string
	// imageID is the image the pool's containers are made of: the one
	// its image name had when they were made.
	imageID string
	client  *podman.Client
	spec    []byte // the spec without name and labels, as JSON: each container is made from a copy
	target  int
	ready   []*podman.Prepared
	making  int // containers being made
	hits    int
	misses  int
	err     string // why the last refill failed; "" once one succeeds
	filling bool
}

// warmMaxIdle is how long a prewarmed container waits for a run before
// it is replaced. Podman's conmon counts a container's timeout (the
// worker's safety net should the worker die mid-run) from when it is made,
// not from its start: a prewarmed container is made with its run's
// timeout plus warmMaxIdle, and replaced before that could cut a run
// short. A container idle longer than its timeout lost its run before.
const warmMaxIdle = 60 * time.Second

func newWarmPools(max, maxOutput int, log zerolog.Logger) *warmPools {
	life, stop := context.WithCancel(context.Background())
	w := &warmPools{max: max, maxOutput: maxOutput, log: log, pools: map[string]*warmPool{},
		suspended: map[*podman.Client]int{}, life: life, stop: stop}
	if max > 0 { // with --max-warm 0 there is never a pool to renew
		go w.renewIdle(warmMaxIdle / 4)
	}
	return w
}

// renewIdle replaces, every interval, the prewarmed containers that have
// waited warmMaxIdle less an interval: none is taken after warmMaxIdle.
func (w *warmPools) renewIdle(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-w.life.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		drops := map[*warmPool][]*podman.Prepared{}
		for _, p := range w.pools {
			if drop := takeExpired(p, warmMaxIdle-interval); len(drop) > 0 {
				drops[p] = drop
			}
		}
		w.mu.Unlock()
		for p, drop := range drops {
			discard(p.client, drop)
			w.refill(p)
		}
	}
}

// takeExpired takes the containers at the front of p.ready (the oldest)
// made more than age ago out of the pool; w.mu is held.
func takeExpired(p *warmPool, age time.Duration) []*podman.Prepared {
	n := 0
	for n < len(p.ready) && time.Since(p.ready[n].Made) > age {
		n++
	}
	drop := p.ready[:n:n]
	p.ready = p.ready[n:]
	return drop
}

// warmKey identifies a spec on a connection: everything but the name, the
// labels (which say which worker made the container) and the image id,
// which the image's name resolves to at each run: a pool follows its
// name to a new image (take). spec is the whole spec, id included.
func warmKey(client *podman.Client, g *specgen.SpecGenerator) (key string, spec []byte) {
	c := *g
	c.Name = ""
	c.Labels = nil
	spec, _ = json.Marshal(&c)
	c.Image = ""
	keyed, _ := json.Marshal(&c)
	sum := sha256.Sum256(append([]byte(client.Name()+"\x00"), keyed...))
	return hex.EncodeToString(sum[:8]), spec
}

// prewarm keeps count containers of a run's spec created and initialised.
func (s *Service) prewarm(ctx context.Context, p prewarmParams) (any, error) {
	if p.Count == nil {
		return nil, fault.Param(fault.KindInvalidParams, "count", "missing required field \"count\"")
	}
	if *p.Count < 0 {
		return nil, fault.Param(fault.KindInvalidParams, "count", "\"count\" must be 0 (drain) or more")
	}
	res, err := s.policy.Resolve(p.Request, true)
	if err != nil {
		return nil, err
	}
	if err := s.pullMissing(ctx, p.Pull, p.Image); err != nil {
		return nil, err
	}
	g, err := s.specFor(ctx, p.config("", res, false))
	var img *podman.Image
	if err == nil {
		img, err = s.pinImage(ctx, g)
	}
	if err != nil {
		return nil, err
	}
	if p.Reuse {
		return s.prewarmInstances(ctx, g, img, *p.Count)
	}
	client := s.podman(ctx)
	w := s.warm
	key, spec := warmKey(client, g)

	w.mu.Lock()
	pool := w.pools[key]
	others := w.targets() - targetOf(pool)
	if others+*p.Count > w.max {
		w.mu.Unlock()
		return nil, fault.Forbidden("count", "%d prewarmed containers would pass this worker's ceiling of %d in all (%d are asked for already; --max-warm)", *p.Count, w.max, others)
	}
	if pool == nil {
		pool = &warmPool{key: key, image: p.Image, client: client, spec: spec, imageID: g.Image}
		w.pools[key] = pool
	}
	drop := w.follow(pool, g.Image, spec)
	pool.target = *p.Count
	drop = append(drop, w.trim(pool)...)
	if pool.target == 0 && pool.making == 0 {
		delete(w.pools, key)
	}
	w.mu.Unlock()
	discard(client, drop)

	// The first fill is the caller's: it learns at once whether the spec
	// can be prewarmed at all, and how many are ready. A spec of which no
	// container can be made is not kept: it would hold part of --max-warm
	// for nothing.
	if err := w.fill(ctx, pool); err != nil {
		w.mu.Lock()
		empty := len(pool.ready) == 0
		if empty && pool.making == 0 && w.pools[key] == pool {
			delete(w.pools, key)
		}
		w.mu.Unlock()
		if empty {
			return nil, err
		}
	}
	return prewarmResult{Warm: w.readyOf(pool)}, nil
}

func targetOf(p *warmPool) int {
	if p == nil {
		return 0
	}
	return p.target
}

// targets is every pool's target together; w.mu is held.
func (w *warmPools) targets() int {
	n := 0
	for _, p := range w.pools {
		n += p.target
	}
	return n
}

func (w *warmPools) readyOf(p *warmPool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(p.ready)
}

// follow moves a pool to the image its name names now, when that is
// another image than its containers': they are taken out, to be
// discarded, and the pool makes new ones of the new image. A container of
// an image whose tag moved is never used. w.mu is held.
func (w *warmPools) follow(p *warmPool, imageID string, spec []byte) []*podman.Prepared {
	if p.imageID == imageID {
		return nil
	}
	p.imageID, p.spec = imageID, spec
	drop := p.ready
	p.ready = nil
	return drop
}

// trim takes out the containers above the pool's target; w.mu is held.
func (w *warmPools) trim(p *warmPool) []*podman.Prepared {
	if len(p.ready) <= p.target {
		return nil
	}
	drop := p.ready[p.target:]
	p.ready = p.ready[:p.target:p.target]
	return drop
}

// discard ends the attach of prepared containers no run will take, and
// removes them.
func discard(client *podman.Client, list []*podman.Prepared) {
	for _, c := range list {
		c.Release()
		client.Owned.RemoveLater(c.ID, "")
	}
}

// fill makes containers until the pool holds its target, one at a time:
// a refill competes with runs for Podman, and one at a time is enough to
// keep up with them. It answers the last error.
func (w *warmPools) fill(ctx context.Context, p *warmPool) error {
	var last error
	for {
		w.mu.Lock()
		if w.suspended[p.client] > 0 || len(p.ready)+p.making >= p.target || w.life.Err() != nil {
			w.mu.Unlock()
			return last
		}
		p.making++
		spec, imageID := p.spec, p.imageID
		w.mu.Unlock()

		c, err := w.make(ctx, p, spec)

		w.mu.Lock()
		p.making--
		switch {
		case err != nil:
			p.err = err.Error()
		case w.suspended[p.client] > 0 || len(p.ready) >= p.target || p.imageID != imageID:
			// An image operation began, the target fell, or the
			// pool's name moved to another image, meanwhile.
			w.mu.Unlock()
			discard(p.client, []*podman.Prepared{c})
			w.mu.Lock()
		default:
			p.err = ""
			p.ready = append(p.ready, c)
		}
		w.mu.Unlock()
		if err != nil {
			w.log.Warn().Err(err).Str("image", p.image).Msg("could not prewarm a container")
			return err
		}
	}
}

// make creates and initialises one container of the pool's spec.
func (w *warmPools) make(ctx context.Context, p *warmPool, spec []byte) (*podman.Prepared, error) {
	var g specgen.SpecGenerator
	if err := json.Unmarshal(spec, &g); err != nil {
		return nil, err
	}
	name, _ := checkName("name", "")
	g.Name = name
	g.Labels = p.client.Identity.Labels(false)
	g.Labels[podman.LabelWarm] = "true"
	if g.Timeout > 0 {
		g.Timeout += uint(warmMaxIdle.Seconds())
	}
	// The create is not cut off when the worker closes: a create request
	// cancelled on its way can leave a container the worker never hears
	// of. close waits for it (within a minute); the attach, bound to
	// w.life, then fails, and the container is removed with the rest.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	pctx, err := p.client.Context(cctx)
	if err != nil {
		return nil, err
	}
	c, err := p.client.Prepare(pctx, w.life, &g, true, w.maxOutput)
	if err != nil {
		if c != nil {
			c.Release()
			p.client.Owned.RemoveLater(c.ID, "")
		}
		return nil, err
	}
	return c, nil
}

// refill fills a pool in the background, off the run's path.
func (w *warmPools) refill(p *warmPool) {
	w.mu.Lock()
	if p.filling || w.life.Err() != nil {
		w.mu.Unlock()
		return
	}
	p.filling = true
	w.fills.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.fills.Done()
		ctx, cancel := context.WithTimeout(w.life, time.Minute)
		defer cancel()
		w.fill(ctx, p)
		w.mu.Lock()
		p.filling = false
		w.mu.Unlock()
	}()
}

// take hands a run a prepared container of its spec, renamed to name when
// the run asked for one; nil when the pool has none (or there is no pool).
// refill, which the run calls once it is over, makes the replacement: a
// container made while the run starts would compete with it for Podman.
func (w *warmPools) take(ctx context.Context, client *podman.Client, g *specgen.SpecGenerator, name string) (c *podman.Prepared, refill func(), err error) {
	key, spec := warmKey(client, g)
	w.mu.Lock()
	p := w.pools[key]
	if p == nil {
		w.mu.Unlock()
		return nil, func() {}, nil
	}
	refill = func() { w.refill(p) }
	if moved := w.follow(p, g.Image, spec); len(moved) > 0 {
		w.mu.Unlock()
		discard(client, moved)
		w.mu.Lock()
	}
	if drop := takeExpired(p, warmMaxIdle); len(drop) > 0 {
		w.mu.Unlock()
		discard(client, drop)
		w.mu.Lock()
	}
	if len(p.ready) == 0 {
		p.misses++
		w.mu.Unlock()
		return nil, refill, nil
	}
	c = p.ready[0]
	p.ready = p.ready[1:]
	p.hits++
	w.mu.Unlock()

	if name != "" {
		if err := client.Rename(ctx, c.ID, name); err != nil {
			c.Release()
			client.Owned.RemoveLater(c.ID, "")
			return nil, refill, err
		}
		c.Name = name
	}
	return c, refill, nil
}

// suspend stops the pools of client's connection from making containers,
// and removes their ready ones, until the returned func is called: a
// prewarmed container holds its image, so rmi and prune come after none
// is left; after them, the pools refill from the images as they are then
// (a failure shows in health). Images are per connection: other
// connections' pools are left alone.
func (w *warmPools) suspend(ctx context.Context, client *podman.Client) (resume func(), err error) {
	w.mu.Lock()
	w.suspended[client]++
	var pools []*warmPool
	for _, p := range w.pools {
		if p.client == client {
			discard(p.client, p.ready)
			p.ready = nil
			pools = append(pools, p)
		}
	}
	w.mu.Unlock()
	resume = func() {
		w.mu.Lock()
		if w.suspended[client]--; w.suspended[client] == 0 {
			delete(w.suspended, client)
		}
		w.mu.Unlock()
		for _, p := range pools {
			w.refill(p)
		}
	}
	return resume, client.Owned.AwaitRemovals(ctx)
}

// renew replaces the ready containers of client's connection, after a
// build there may have given a pool's image tag to a new image.
func (w *warmPools) renew(ctx context.Context, client *podman.Client) {
	resume, _ := w.suspend(ctx, client)
	resume()
}

// close ends every pool: attaches end, and the containers, which the
// worker owns, are removed with the rest at its exit.
func (w *warmPools) close() {
	w.stop()
	w.fills.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pools {
		for _, c := range p.ready {
			c.Release()
		}
		p.ready = nil
	}
}

// WarmPool is one pool as metrics and health report it.
type WarmPool struct {
	Image      string `json:"image"`
	Connection string `json:"connection"`
	Key        string `json:"key"`
	Target     int    `json:"target"`
	Ready      int    `json:"ready"`
	Hits       int    `json:"hits"`
	Misses     int    `json:"misses"`
	Error      string `json:"error,omitempty"`
}

// WarmStats is every pool, for metrics; health reports the ones that
// cannot be refilled.
type WarmStats struct {
	Max   int        `json:"max"`
	Ready int        `json:"ready"`
	Pools []WarmPool `json:"pools"`
}

// Warm reports the pools.
func (s *Service) Warm() WarmStats {
	w := s.warm
	w.mu.Lock()
	defer w.mu.Unlock()
	st := WarmStats{Max: w.max, Pools: []WarmPool{}}
	for _, p := range w.pools {
		st.Ready += len(p.ready)
		st.Pools = append(st.Pools, WarmPool{Image: p.image, Connection: p.client.Name(), Key: p.key, Target: p.target,
			Ready: len(p.ready), Hits: p.hits, Misses: p.misses, Error: p.err})
	}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Key < st.Pools[j].Key })
	return st
}

// Close ends the prewarm pools; the worker calls it on its way out,
// before its containers are removed.
func (s *Service) Close() {
	s.warm.close()
	s.instances.close()
}

// config is the container a run of these params makes.
func (r RunSpec) config(name string, res limits.Resources, kept bool) containerConfig {
	return containerConfig{
		Image: r.Image, Name: name, Command: r.Command, Entrypoint: r.Entrypoint, Env: r.Env,
		Ports: r.Ports, Volumes: r.Volumes, Mounts: r.Mounts, Workdir: r.Workdir, User: r.User, Resources: res,
		Kept: kept,
	}
}
