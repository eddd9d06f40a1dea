package rpc

import (
	"container/list"
	"sync"
)

// fifo is a counting semaphore that grants slots strictly in the order
// tickets were taken. A buffered channel is not enough: goroutines started
// one after the other may reach it in any order, so a later call could run
// before an earlier one that was waiting for the same worker. Tickets are
// taken in the read loop, in arrival order; waiting happens on the call's
// own goroutine.
type fifo struct {
	mu      sync.Mutex
	size    int
	free    int
	waiters list.List // of chan struct{}, oldest first
}

func newFIFO(n int) *fifo { return &fifo{size: n, free: n} }

type ticket struct {
	granted chan struct{} // receives once the slot is the ticket's
	elem    *list.Element // the ticket's place in the queue; nil if granted at once
}

// take returns a ticket, granted at once when a slot is free and nobody waits.
func (f *fifo) take() ticket {
	t := ticket{granted: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.free > 0 && f.waiters.Len() == 0 {
		f.free--
		t.granted <- struct{}{}
		return t
	}
	t.elem = f.waiters.PushBack(t.granted)
	return t
}

// abandon gives up a ticket whose call was cancelled while it waited.
func (f *fifo) abandon(t ticket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-t.granted:
		f.releaseLocked() // granted in the meantime: pass the slot on
	default:
		f.waiters.Remove(t.elem)
	}
}

// release returns a slot, handing it to the oldest waiter if there is one.
func (f *fifo) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked()
}

func (f *fifo) releaseLocked() {
	if front := f.waiters.Front(); front != nil {
		f.waiters.Remove(front)
		front.Value.(chan struct{}) <- struct{}{}
		return
	}
	f.free++
}

// counts reports slots in use and tickets waiting.
func (f *fifo) counts() (busy, queued int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size - f.free, f.waiters.Len()
}
