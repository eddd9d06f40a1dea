package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/rs/zerolog"
)

// readLoop dispatches the requests st reads, one after another, until
// reading ends. Each is queued, refused or handed off at once, so the
// next line is read while earlier calls run.
func (s *Server) readLoop(st *stream) {
	for {
		c, err := st.next()
		if err != nil {
			return // st.end has recorded it for Serve
		}
		s.mu.Lock()
		if st.stopped.Load() {
			s.mu.Unlock()
			return // Serve has returned: nothing more is dispatched
		}
		s.inFlight++ // under the same lock as the check: Serve's last drain waits for it
		closing := s.closing
		s.mu.Unlock()
		s.dispatch(c, closing)
	}
}

// dispatch sends a request on its way; it is counted in flight, and
// finish (or done) ends that. Cancellation is handled right here, ahead
// of any queued call; control methods run at once on a goroutine of their
// own; every other method waits for a worker slot in arrival order, or is
// answered Busy at once when too many calls wait already.
func (s *Server) dispatch(c *call, closing bool) {
	c.start = time.Now()
	_, known := s.methods[c.name]
	switch {
	case c.name == CancelMethod:
		s.cancelRequest(c)
		s.deliver(c, nil, nil) // as a call, it answers null
		s.done()
	case !known && c.notif() && c.ret == nil:
		// LSP's convention: "$/" notifications a server does not know
		// may be ignored; so is any unknown notification.
		s.done()
	case !known:
		s.finish(c, nil, fault.Errorf(fault.KindMethodNotFound, "Method not found: %q; see protocol.md for the methods this worker answers", c.name))
	case closing:
		s.finish(c, nil, fault.Errorf(fault.KindUnavailable, "the worker is shutting down and takes no new calls"))
	case s.control[c.name] && c.ret != nil:
		s.execute(c) // Server.Call: the caller's goroutine waits anyway
	case s.control[c.name]:
		select {
		case s.controls <- struct{}{}:
			go func() {
				s.execute(c)
				<-s.controls
			}()
		default:
			s.finish(c, nil, fault.Errorf(fault.KindBusy, "the worker is busy: %d control calls are running already; retry once one has answered", maxControl))
		}
	default:
		if s.opts.Order != nil {
			c.order = s.opts.Order(c.name, c.params)
		}
		if busy := s.pool.submit(c); busy != nil {
			s.finish(c, nil, busy)
		}
	}
}

// execute runs a call and answers it. A call cancelled just before it
// could start is answered without running.
func (s *Server) execute(c *call) {
	var result any
	err := c.ctx.Err()
	if err == nil {
		result, err = s.invoke(c)
	}
	s.finish(c, result, err)
}

// dropped answers a call cancelled while it waited for a worker.
func (s *Server) dropped(c *call) {
	s.finish(c, nil, c.ctx.Err())
}

// invoke runs a method, turning a panic into an internal error for this
// call alone.
func (s *Server) invoke(c *call) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Str("method", c.name).Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("handler panicked")
			err = fault.Errorf(fault.KindInternal, "internal error in %s: %v", c.name, p)
		}
	}()
	return s.methods[c.name](withCall(c.ctx, &Call{ID: c.id, Method: c.name, server: s}), c.params)
}

// Call runs method with params in this process, for transports other
// than Serve's stream (the per-call CLI, an HTTP endpoint), the way a call
// read by Serve runs: it takes its turn for a worker slot in the same
// FIFO as the stream's calls (a control method runs at once, on the
// caller's goroutine), is answered Busy past the same bounds (params
// weigh their length), gets one log line and one Observe, answers
// Unavailable once Shutdown has begun, and is cancelled by Shutdown after
// its grace period like any other call. ctx's cancellation and deadline
// reach the handler too. A panic in the method becomes an internal error
// for this call. The handler sees CallFrom(ctx) with a nil ID; its
// Notify writes to Serve's output, when Serve runs.
//
// Call works with or without Serve. The error, when not nil, is an
// *fault.Error.
func (s *Server) Call(ctx context.Context, method string, params json.RawMessage) (any, error) {
	c := &call{name: method, params: params, weight: len(params), ret: make(chan outcome, 1)}
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.callCtx, func() { c.cancel(context.Cause(s.callCtx)) })
	defer stop()
	s.mu.Lock()
	s.inFlight++ // Shutdown and Serve's end wait for it like for a call read from the stream
	closing := s.closing
	s.mu.Unlock()
	s.dispatch(c, closing)
	o := <-c.ret
	if o.err != nil {
		return nil, o.err
	}
	return o.result, nil
}

// finish logs the call, reports it to Observe, and delivers its outcome.
func (s *Server) finish(c *call, result any, err error) {
	rerr := s.classify(c, err)
	took := time.Since(c.start)
	ev := s.log.Info()
	if rerr != nil {
		ev = s.log.Warn().Str("error_type", Type(rerr.Kind)).Int64("code", Code(rerr.Kind)).Str("error", rerr.Error())
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
		if _, known := s.methods[name]; !known {
			name = "(unknown method)" // one bucket, whatever names callers invent
		}
		s.opts.Observe(name, took, rerr)
	}
	s.deliver(c, result, rerr)
	s.done()
}

// classify turns what a call ended with into its error. A cancelled call
// says so, whatever error its work ended with.
func (s *Server) classify(c *call, err error) *fault.Error {
	if err == nil {
		return nil
	}
	rerr := fault.As(err)
	if c.ctx != nil && c.ctx.Err() != nil && rerr.Kind != fault.KindTimeout {
		switch cause := context.Cause(c.ctx); {
		case errors.Is(cause, errCancelRequested):
			rerr = &fault.Error{Kind: fault.KindCancelled, Message: "Request cancelled", Err: err}
		case errors.Is(cause, ErrShuttingDown):
			rerr = &fault.Error{Kind: fault.KindCancelled, Message: "Request cancelled: the worker is shutting down", Err: err}
		}
	}
	return rerr
}

// deliver sends a call's one outcome where it is awaited: to Server.Call's
// caller, or as a reply on the stream (a notification gets none).
func (s *Server) deliver(c *call, result any, rerr *fault.Error) {
	if c.cancel != nil {
		c.cancel(nil) // the call is over: release its context
	}
	switch {
	case c.ret != nil:
		c.ret <- outcome{result, rerr}
	case !c.notif():
		if err := c.out.reply(c, result, rerr); err != nil {
			s.log.Error().Err(err).Str("method", c.name).Msg("reply not sent")
		}
	}
}

// done ends a request's count in flight, once it is answered.
func (s *Server) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight--; s.inFlight == 0 {
		s.idle.Broadcast()
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
