package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
	"github.com/sourcegraph/jsonrpc2"
)

// Method handles one call. params is the raw "params" value (nil when
// absent); the result is marshalled to JSON. Errors that are not *fault.Error are
// reported as internal errors, so handlers return *fault.Error for anything a
// caller can act on.
type Method func(ctx context.Context, params json.RawMessage) (any, error)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// MaxWorkers bounds the calls that run at once; further calls wait
	// their turn in arrival order (default 10, the seed's MAX_WORKERS).
	MaxWorkers int
	// MaxQueued bounds the calls waiting for a worker (default 4096).
	// Past it a new call is answered Busy at once: reading never stops,
	// so cancellations and control calls always get through, and a flood
	// cannot grow memory without bound.
	MaxQueued int
	// MaxQueuedBytes bounds the bytes that waiting calls hold (default
	// 64 MiB): a call weighs the bytes of its request as read (its line,
	// or its entry of a batch line), params included. A call that would
	// pass the bound is answered Busy, like one past MaxQueued. With it,
	// memory stays bounded whatever a client sends: one line being read
	// (MaxLineBytes, once more while it is joined), MaxQueuedBytes
	// waiting, and one request each for MaxWorkers running calls and 16
	// control calls.
	MaxQueuedBytes int
	// MaxLineBytes bounds one input line (default 16 MiB).
	MaxLineBytes int
	// Control names methods of the control plane (for the worker:
	// health, metrics, shutdown). They run as soon as they are read, on
	// a goroutine of their own, without a worker slot: a supervisor gets
	// its answer while every slot is busy and the queue is full. At most
	// 16 run at once (more are answered Busy), so they must be quick and
	// take no params to speak of. $/cancelRequest is always handled this
	// way. A name that is not among the methods is ignored.
	Control []string
	// Logger receives one line per call and protocol faults.
	Logger zerolog.Logger
	// Observe, when set, is told about every finished call (for metrics).
	Observe func(method string, took time.Duration, err *fault.Error)
	// Redact, when set, makes a call's params safe to log; at debug level
	// each call's log line carries what it returns.
	Redact func(method string, params json.RawMessage) json.RawMessage
	// Ready, when set, names a notification Serve sends before it reads
	// anything, so a supervisor knows when to start sending.
	Ready func() (method string, params any)
	// Order, when set, gives a call an ordering key (for the worker: the
	// container it names). Calls with the same non-empty key run one
	// after another, in the order they arrived, each waiting in the queue
	// (not on a worker slot) until the one before it has answered; calls
	// with different keys, or none, are not held back by each other. It
	// runs on the read loop for every call, so it must be quick.
	Order func(method string, params json.RawMessage) string
}

const (
	DefaultMaxWorkers     = 10
	DefaultMaxQueued      = 4096
	DefaultMaxQueuedBytes = 64 << 20
	DefaultMaxLineBytes   = 16 << 20
)

// CancelMethod is LSP's cancellation notification: {"id": <the call's id>}.
const CancelMethod = "$/cancelRequest"

var (
	errCancelRequested = errors.New("cancelled by " + CancelMethod)
	// ErrShuttingDown is the cancellation cause of calls still running when
	// Serve's context ends or Shutdown's grace period is over.
	ErrShuttingDown = errors.New("the worker is shutting down")
)

// maxControl bounds the control calls that run at once: each has a
// goroutine and holds its params, and none should wait for another.
const maxControl = 16

// Server dispatches calls, read from a stream by Serve or passed to Call,
// to Methods, at most MaxWorkers at a time, and delivers each outcome as
// soon as its call finishes.
type Server struct {
	methods map[string]Method
	control map[string]bool
	opts    Options
	log     zerolog.Logger

	pool     *pool         // the workers, and the calls waiting for one
	controls chan struct{} // a token per control call running

	calls   *registry
	writer  atomic.Pointer[lineWriter] // Serve's output
	stream  *stream
	callCtx context.Context
	stopAll context.CancelCauseFunc

	mu       sync.Mutex
	idle     *sync.Cond
	inFlight int // requests dispatched and not yet answered
	closing  bool

	shutdownOnce sync.Once
	stopped      chan struct{} // closed once Shutdown has drained every call
}

// NewServer returns a Server for methods. The map is used as it is: one
// place lists every method the worker answers.
func NewServer(methods map[string]Method, opts Options) *Server {
	if opts.MaxWorkers <= 0 {
		opts.MaxWorkers = DefaultMaxWorkers
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = DefaultMaxQueued
	}
	if opts.MaxQueuedBytes <= 0 {
		opts.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	s := &Server{
		methods:  methods,
		control:  map[string]bool{},
		opts:     opts,
		log:      opts.Logger,
		controls: make(chan struct{}, maxControl),
		calls:    newRegistry(),
		stopped:  make(chan struct{}),
	}
	for _, name := range opts.Control {
		if _, ok := methods[name]; !ok {
			s.log.Warn().Str("method", name).Msg("rpc: a control method that is not among the methods; ignored")
			continue
		}
		s.control[name] = true
	}
	s.pool = &pool{size: opts.MaxWorkers, maxCount: opts.MaxQueued, maxBytes: opts.MaxQueuedBytes, run: s.execute, dropped: s.dropped}
	s.callCtx, s.stopAll = context.WithCancelCause(context.Background())
	s.idle = sync.NewCond(&s.mu)
	return s
}

// Shutdown stops taking calls (new ones are answered Unavailable), gives
// the calls in flight up to grace to finish and be answered, then cancels
// the rest with ErrShuttingDown and waits for their replies. Serve returns
// once it is done, even if the input is still open. Calling it again has
// no further effect.
func (s *Server) Shutdown(grace time.Duration) {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		finished := make(chan struct{})
		go func() {
			s.drain()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(grace):
			s.log.Warn().Dur("grace", grace).Msg("calls still running after the grace period; cancelling them")
			s.stopAll(ErrShuttingDown)
			<-finished
		}
		s.pool.retire()
		close(s.stopped)
	})
}

// Stats is a snapshot of the dispatcher's load.
type Stats struct {
	MaxWorkers int   `json:"max"`
	Busy       int64 `json:"busy"`
	Queued     int64 `json:"queued"`
}

// Stats reports how many calls run and wait right now.
func (s *Server) Stats() Stats {
	busy, queued := s.pool.counts()
	return Stats{MaxWorkers: s.opts.MaxWorkers, Busy: int64(busy), Queued: int64(queued)}
}

// QueuedBytes is what the calls waiting for a worker slot hold, counted
// against MaxQueuedBytes. It is apart from Stats so that the JSON metrics
// method's answer keeps its shape.
func (s *Server) QueuedBytes() int64 { return int64(s.pool.queuedBytes()) }

// Serve reads requests from in and writes replies and notifications to out
// until in ends or ctx is done. At the end of the input, calls in flight
// finish and are answered before Serve returns nil. When ctx ends, running
// calls are cancelled with ErrShuttingDown, answered, and Serve returns.
//
// Once Serve has returned, nothing more is read, dispatched or written.
// When in can be interrupted (it has SetReadDeadline, as a pipe or socket
// *os.File polled by the runtime does), the read in progress is ended
// before Serve returns and the deadline is cleared again; otherwise the
// line that read returns is dropped.
func (s *Server) Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	defer s.stopAll(ErrShuttingDown)
	defer s.pool.retire() // every call has finished: the workers end

	var brokenErr atomic.Pointer[error]
	w := &lineWriter{w: out, onBroken: func(err error) {
		// Nobody reads the replies any more: stop everything, so that
		// running work (containers included) is cancelled and cleaned up.
		brokenErr.Store(&err)
		s.log.Error().Err(err).Msg("output closed; cancelling every call")
		s.stopAll(err)
	}}
	s.writer.Store(w) // Notify may be called at any time, by a call run through Call
	defer w.close()
	st := &stream{
		r:        newLineReader(in, s.opts.MaxLineBytes),
		w:        w,
		calls:    s.calls,
		ctx:      s.callCtx,
		maxBatch: s.opts.MaxWorkers + s.opts.MaxQueued,
		ended:    make(chan struct{}),
	}
	s.stream = st
	if s.opts.Ready != nil {
		method, params := s.opts.Ready()
		if err := s.Notify(method, params); err != nil {
			return err
		}
	}
	s.pool.start()
	go s.readLoop(st)

	select {
	case <-st.ended:
		// The input ended: every call read is answered first.
		s.drain()
	case <-s.stopped:
	case <-ctx.Done():
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.stopAll(ErrShuttingDown)
		s.drain()
	case <-s.callCtx.Done():
		s.drain()
	}
	s.stopReading(st, in)
	if p := brokenErr.Load(); p != nil {
		return *p
	}
	select {
	case <-st.ended:
		if err := st.readErr; err != io.EOF {
			return fmt.Errorf("rpc: reading the input: %w", err)
		}
	default: // still blocked in a read that cannot be interrupted
	}
	return nil
}

// stopReading makes sure that nothing read from now on is dispatched, and
// ends the read in progress when in allows it. A call dispatched just
// before is answered first.
func (s *Server) stopReading(st *stream, in io.Reader) {
	s.mu.Lock()
	st.stopped.Store(true)
	s.mu.Unlock()
	s.drain()
	if d, ok := in.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Unix(1, 0)) == nil {
		<-st.ended
		_ = d.SetReadDeadline(time.Time{}) // the input is the caller's again, as it was
	}
}

// drain waits until every dispatched request has finished and been answered.
func (s *Server) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inFlight > 0 {
		s.idle.Wait()
	}
}

// Notify sends a notification to the peer, for example build progress.
func (s *Server) Notify(method string, params any) error {
	w := s.writer.Load()
	if w == nil {
		return errors.New("rpc: Notify before Serve")
	}
	raw, err := Marshal(params) // a build's "-->" stays as Podman wrote it
	if err != nil {
		return err
	}
	p := json.RawMessage(raw)
	// The library's Request without an id is a notification:
	// {"jsonrpc":"2.0","method":…,"params":…}.
	data, err := Marshal(&jsonrpc2.Request{Method: method, Params: &p, Notif: true})
	if err != nil {
		return err
	}
	return w.writeLine(data)
}

// millis writes d in milliseconds with microsecond precision and no
// trailing zeros (88.51, 2, 0.081), as Float64 printed it, without the
// shortest-float formatting that took 9% of the in-process round trip
// in its CPU profile.
func millis(d time.Duration) []byte {
	us := d.Microseconds()
	b := make([]byte, 0, 24)
	if us < 0 {
		b, us = append(b, '-'), -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	if frac := us % 1000; frac != 0 {
		digits := []byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
		for digits[len(digits)-1] == '0' {
			digits = digits[:len(digits)-1]
		}
		b = append(b, digits...)
	}
	return b
}

// Call describes the call a handler is serving.
type Call struct {
	ID     json.RawMessage // the caller's id, exactly as sent; nil for a notification and through Server.Call
	Method string
	server *Server
}

// Notify sends a notification to the peer, for example build progress.
// It returns once the line is written, so notifications sent before a
// handler returns always precede its reply.
func (c *Call) Notify(method string, params any) error {
	return c.server.Notify(method, params)
}

type callKey struct{}

func withCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the call a handler's context belongs to, or nil.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}
