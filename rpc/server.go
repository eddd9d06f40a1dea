package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/sourcegraph/jsonrpc2"
)

// Method handles one call. params is the raw "params" value (nil when
// absent); the result is marshalled to JSON. Errors that are not *Error are
// reported as internal errors, so handlers return *Error for anything a
// caller can act on.
type Method func(ctx context.Context, params json.RawMessage) (any, error)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// MaxWorkers bounds the calls that run at once; further calls wait
	// their turn in arrival order (default 10, the seed's MAX_WORKERS).
	MaxWorkers int
	// MaxQueued bounds the calls waiting for a worker. Past it the worker
	// stops reading its input until a call finishes, so a flood cannot grow
	// memory without bound (default 4096).
	MaxQueued int
	// MaxLineBytes bounds one input line (default 16 MiB).
	MaxLineBytes int
	// Logger receives one line per call and protocol faults.
	Logger zerolog.Logger
	// Observe, when set, is told about every finished call (for metrics).
	Observe func(method string, took time.Duration, err *Error)
	// Redact, when set, makes a call's params safe to log; at debug level
	// each call's log line carries what it returns.
	Redact func(method string, params json.RawMessage) json.RawMessage
	// Ready, when set, names a notification Serve sends before it reads
	// anything, so a supervisor knows when to start sending.
	Ready func() (method string, params any)
}

const (
	DefaultMaxWorkers   = 10
	DefaultMaxQueued    = 4096
	DefaultMaxLineBytes = 16 << 20
)

// CancelMethod is LSP's cancellation notification: {"id": <the call's id>}.
const CancelMethod = "$/cancelRequest"

var (
	errCancelRequested = errors.New("cancelled by " + CancelMethod)
	// ErrShuttingDown is the cancellation cause of calls still running when
	// Serve's context ends.
	ErrShuttingDown = errors.New("the worker is shutting down")
)

// Server dispatches calls read from a stream to Methods, at most MaxWorkers
// at a time, and writes each reply as soon as its call finishes.
type Server struct {
	methods map[string]Method
	opts    Options
	log     zerolog.Logger

	pool  *pool         // the workers, and the calls waiting for one
	admit chan struct{} // a token per running or waiting call

	calls   *registry
	writer  *lineWriter
	stream  *stream
	callCtx context.Context
	stopAll context.CancelCauseFunc

	mu      sync.Mutex
	idle    *sync.Cond
	running int // handler goroutines not yet finished
	closing bool

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
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	s := &Server{
		methods: methods,
		opts:    opts,
		log:     opts.Logger,
		admit:   make(chan struct{}, opts.MaxWorkers+opts.MaxQueued),
		calls:   newRegistry(),
		stopped: make(chan struct{}),
	}
	s.pool = &pool{size: opts.MaxWorkers, run: s.execute, dropped: s.dropped}
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
	s.writer = &lineWriter{w: out, onBroken: func(err error) {
		// Nobody reads the replies any more: stop everything, so that
		// running work (containers included) is cancelled and cleaned up.
		brokenErr.Store(&err)
		s.log.Error().Err(err).Msg("output closed; cancelling every call")
		s.stopAll(err)
	}}
	defer s.writer.close()
	st := &stream{
		r:     newLineReader(in, s.opts.MaxLineBytes),
		w:     s.writer,
		calls: s.calls,
		ended: make(chan struct{}),
	}
	s.stream = st
	if s.opts.Ready != nil {
		method, params := s.opts.Ready()
		if err := s.Notify(method, params); err != nil {
			return err
		}
	}
	s.pool.start()
	conn := jsonrpc2.NewConn(context.Background(), st, s, jsonrpc2.SetLogger(zerologPrinter{s.log}))
	defer conn.Close()

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

// drain waits until every dispatched call has finished and replied.
func (s *Server) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.running > 0 {
		s.idle.Wait()
	}
}

// Notify sends a notification to the peer, for example build progress.
func (s *Server) Notify(method string, params any) error {
	if s.writer == nil {
		return errors.New("rpc: Notify before Serve")
	}
	data, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params"`
	}{"2.0", method, params})
	if err != nil {
		return err
	}
	return s.writer.writeLine(data)
}

// Handle implements jsonrpc2.Handler. The library calls it from its read
// loop with the internal id of a message the stream registered, so it
// returns quickly: cancellation is handled right here, ahead of any queued
// call, and everything else runs on its own goroutine once a worker is
// free.
func (s *Server) Handle(_ context.Context, _ *jsonrpc2.Conn, req *jsonrpc2.Request) {
	internal := req.ID.Num
	c := s.calls.get(internal)
	if c == nil {
		s.log.Error().Uint64("internal_id", internal).Msg("rpc: the library handed back a message the stream did not register")
		return
	}
	if s.stream.stopped.Load() {
		return // Serve has returned: nothing more is dispatched
	}
	if c.name == CancelMethod {
		s.cancelRequest(c)
		if c.notif() {
			s.calls.finish(internal)
		} else {
			s.reply(internal, c, nil, nil)
		}
		return
	}
	m, ok := s.methods[c.name]
	if !ok {
		// LSP's convention: "$/" notifications a server does not know may be ignored.
		s.finish(internal, c, time.Now(), nil, Errorf(KindMethodNotFound, "Method not found: %q; see protocol.md for the methods this worker answers", c.name), context.Background())
		return
	}

	s.mu.Lock()
	if s.stream.stopped.Load() {
		s.mu.Unlock()
		return
	}
	if s.closing {
		s.mu.Unlock()
		s.finish(internal, c, time.Now(), nil, Errorf(KindUnavailable, "the worker is shutting down and takes no new calls"), context.Background())
		return
	}
	s.running++ // under the same lock as the check: stopReading's drain waits for it
	s.mu.Unlock()

	s.admit <- struct{}{} // blocks reading when too many calls wait
	c.method = m
	c.start = time.Now()
	c.ctx, c.cancel = context.WithCancelCause(s.callCtx)
	s.pool.submit(c)
}

// execute runs a call on a worker and answers it. A call cancelled just
// before a worker took it is answered without running.
func (s *Server) execute(c *call) {
	var result any
	err := c.ctx.Err()
	if err == nil {
		result, err = s.invoke(c.ctx, c.method, c)
	}
	s.finish(c.internal, c, c.start, result, err, c.ctx)
	s.release(c)
}

// dropped answers a call cancelled while it waited for a worker.
func (s *Server) dropped(c *call) {
	s.finish(c.internal, c, c.start, nil, c.ctx.Err(), c.ctx)
	s.release(c)
}

// release ends a call's hold on the dispatcher once it is answered.
func (s *Server) release(c *call) {
	c.cancel(nil)
	<-s.admit
	s.mu.Lock()
	s.running--
	if s.running == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// invoke runs a method, turning a panic into an internal error for this
// call alone.
func (s *Server) invoke(ctx context.Context, m Method, c *call) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Str("method", c.name).Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("handler panicked")
			err = Errorf(KindInternal, "internal error in %s: %v", c.name, p)
		}
	}()
	return m(withCall(ctx, &Call{ID: c.id, Method: c.name, server: s}), c.params)
}

// finish logs the call, reports it, and sends its one reply. A
// notification of an unknown method is dropped without a word: LSP lets a
// server ignore "$/" notifications it does not know.
func (s *Server) finish(internal uint64, c *call, start time.Time, result any, err error, ctx context.Context) {
	_, known := s.methods[c.name]
	if c.notif() {
		s.calls.finish(internal)
		if !known {
			return
		}
	}
	var rerr *Error
	if err != nil {
		rerr = AsError(err)
		// A cancelled call says so, whatever error its work ended with.
		if ctx.Err() != nil && rerr.Kind != KindTimeout {
			switch cause := context.Cause(ctx); {
			case errors.Is(cause, errCancelRequested):
				rerr = &Error{Kind: KindCancelled, Message: "Request cancelled", Err: err}
			case errors.Is(cause, ErrShuttingDown):
				rerr = &Error{Kind: KindCancelled, Message: "Request cancelled: the worker is shutting down", Err: err}
			}
		}
	}
	took := time.Since(start)
	ev := s.log.Info()
	if rerr != nil {
		ev = s.log.Warn().Str("error_type", rerr.Type()).Int64("code", rerr.Code()).Str("error", rerr.Error())
	}
	if !c.notif() {
		ev = ev.RawJSON("id", c.id)
	}
	if s.opts.Redact != nil && c.params != nil && s.log.GetLevel() <= zerolog.DebugLevel {
		ev = ev.RawJSON("params", s.opts.Redact(c.name, c.params))
	}
	ev.Str("method", c.name).RawJSON("duration_ms", millis(took)).Msg("call")
	if s.opts.Observe != nil {
		name := c.name
		if !known && name != CancelMethod {
			name = "(unknown method)" // one bucket, whatever names callers invent
		}
		s.opts.Observe(name, took, rerr)
	}
	if !c.notif() {
		s.reply(internal, c, result, rerr)
	}
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

// reply sends a call's one reply straight to the stream. Going through
// the library's Conn.Reply would encode the reply and then parse it again
// to swap the id back (twice the JSON work for every result).
func (s *Server) reply(internal uint64, c *call, result any, rerr *Error) {
	err := s.stream.reply(internal, result, rerr)
	var enc *encodeError
	if errors.As(err, &enc) {
		// The result could not be encoded: the call still gets its one reply.
		err = s.stream.reply(internal, nil, Wrap(KindInternal, enc.err, "internal error: encoding the result of %s: %v", c.name, enc.err))
	}
	if err != nil {
		s.log.Error().Err(err).Str("method", c.name).Msg("reply not sent")
	}
}

func (s *Server) cancelRequest(c *call) {
	var p struct {
		ID json.RawMessage `json:"id"`
	}
	if c.params == nil || json.Unmarshal(c.params, &p) != nil || len(p.ID) == 0 {
		s.log.Warn().Msg(CancelMethod + " without params.id; ignored")
		return
	}
	if !s.calls.cancel(p.ID, errCancelRequested) {
		s.log.Debug().RawJSON("id", p.ID).Msg(CancelMethod + " for a call not in flight; ignored")
	}
}

// Call describes the call a handler is serving.
type Call struct {
	ID     json.RawMessage // the caller's id, exactly as sent; nil for a notification
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

// zerologPrinter routes the library's own log lines into the worker's log.
type zerologPrinter struct{ log zerolog.Logger }

func (p zerologPrinter) Printf(format string, v ...any) {
	p.log.Warn().Str("component", "jsonrpc2").Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
