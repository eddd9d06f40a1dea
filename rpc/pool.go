package rpc

import (
	"container/list"
	"context"
	"sync"

	"github.com/podman-worker/podman-worker/fault"
)

// pool runs calls on at most size long-lived goroutines, strictly in the
// order they were submitted. A goroutine per call would start with a
// small stack and grow it again on every call (the bindings' call paths
// are deep); a worker keeps its stack between calls. Calls that find
// every worker busy wait in a FIFO, bounded in count and in bytes; one
// that is cancelled while it waits leaves the FIFO and is answered at
// once, without waiting for a worker. A call whose order key is held by
// a running call waits in the FIFO too, behind nothing else: workers take
// the oldest call whose key is free.
type pool struct {
	size     int
	maxCount int         // calls that may wait
	maxBytes int         // bytes the waiting calls may hold
	run      func(*call) // runs a call to its reply, on a worker
	dropped  func(*call) // answers a call cancelled while it waited, on a goroutine of its own

	mu      sync.Mutex
	queue   list.List       // of *call, oldest first
	bytes   int             // the waiting calls' weights
	idle    []chan *call    // one per worker waiting for a call
	workers int             // goroutines alive
	running int             // calls being run
	retired bool            // idle workers end instead of waiting
	held    map[string]bool // order keys of running calls
}

// submit hands c to an idle worker, or to a new one while there are fewer
// than size, or queues it. When c would have to wait and the queue is
// full, it returns a Busy error instead: the caller answers c with it at
// once. c.ctx must be set.
func (p *pool) submit(c *call) *fault.Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case len(p.idle) > 0 && !p.held[c.order]:
		// Whenever a worker is idle, the queue holds only calls whose
		// key is held, none of them c's: handing c over directly keeps
		// arrival order.
		p.hold(c)
		ch := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.running++
		ch <- c
	case p.workers < p.size && !p.held[c.order]:
		p.hold(c)
		p.workers++
		p.running++
		go p.work(make(chan *call, 1), c)
	case p.queue.Len() >= p.maxCount:
		return fault.Errorf(fault.KindBusy, "the worker is busy: %d calls already wait for a worker slot (--max-queued); retry later, or raise --max-queued", p.queue.Len()).
			With("limit", "max_queued")
	case p.bytes+c.weight > p.maxBytes:
		return fault.Errorf(fault.KindBusy, "the worker is busy: the calls waiting for a worker slot hold %d bytes, and this one's %d would pass --max-queued-bytes (%d); retry later, or raise --max-queued-bytes", p.bytes, c.weight, p.maxBytes).
			With("limit", "max_queued_bytes")
	default:
		c.queued = p.queue.PushBack(c)
		p.bytes += c.weight
		// Registered under the lock, so a worker that takes c later sees
		// unwatch. AfterFunc runs its function on a goroutine of its own,
		// so it can take the lock.
		c.unwatch = context.AfterFunc(c.ctx, func() {
			if p.remove(c) {
				p.dropped(c)
			}
		})
	}
	return nil
}

// remove takes c out of the queue; false when a worker already took it.
func (p *pool) remove(c *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.queued == nil {
		return false
	}
	p.queue.Remove(c.queued)
	p.bytes -= c.weight
	c.queued = nil
	return true
}

// start brings the pool to size idle workers, so that the number of
// goroutines is the same before, during and after a burst of calls (a
// leak check sees a steady count), and the first calls start no goroutine.
func (p *pool) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired = false
	for ; p.workers < p.size; p.workers++ {
		mine := make(chan *call, 1)
		p.idle = append(p.idle, mine)
		go p.work(mine, nil)
	}
}

// work runs c (or, when nil, waits to be handed a call), then the oldest
// queued call, and so on; with nothing to do it waits, idle, for submit to
// hand it the next one.
func (p *pool) work(mine chan *call, c *call) {
	if c == nil {
		c = <-mine
	}
	for c != nil {
		p.run(c)
		c = p.next(mine, c)
	}
}

// hold marks c's order key as held by a running call. p.mu is held.
func (p *pool) hold(c *call) {
	if c.order == "" {
		return
	}
	if p.held == nil {
		p.held = map[string]bool{}
	}
	p.held[c.order] = true
}

// next releases done's key and takes the oldest queued call whose key is
// free, or waits idle for submit to hand it one.
func (p *pool) next(mine chan *call, done *call) *call {
	p.mu.Lock()
	p.running--
	delete(p.held, done.order)
	for e := p.queue.Front(); e != nil; e = e.Next() {
		c := e.Value.(*call)
		if p.held[c.order] {
			continue // its key's earlier call still runs
		}
		p.queue.Remove(e)
		c.queued = nil
		p.bytes -= c.weight
		p.running++
		p.hold(c)
		p.mu.Unlock()
		c.unwatch() // it runs now: its cancellation is the handler's to see
		return c
	}
	if p.retired {
		p.workers--
		p.mu.Unlock()
		return nil
	}
	p.idle = append(p.idle, mine)
	p.mu.Unlock()
	return <-mine // nil when retired
}

// retire ends the idle workers, and every other one once the queue is
// empty. Until start is called again, a later submit starts a worker that
// ends as soon as the queue is empty.
func (p *pool) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired = true
	for _, ch := range p.idle {
		ch <- nil
	}
	p.workers -= len(p.idle)
	p.idle = nil
}

// counts reports calls running and calls waiting.
func (p *pool) counts() (running, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, p.queue.Len()
}

// queuedBytes is what the waiting calls hold, against maxBytes.
func (p *pool) queuedBytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}
