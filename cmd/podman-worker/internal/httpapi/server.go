// Package httpapi serves the Flask "Podman API" over HTTP: its /api/v1
// routes, request fields, response envelope and status codes, so that its
// clients can switch to podman-worker without a change. It owns HTTP and
// nothing else: the routes, the translation of a request into a method's
// params, the shaping of the answer, auth, limits, the server's timeouts
// and its drain. Every request becomes one call through a Caller, so the
// methods, policy, limits and queue are those of the JSON-RPC protocol.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Caller runs one of the worker's methods, as the JSON-RPC dispatcher
// would for a call read from stdin. Errors are *fault.Error, or anything
// fault.As classifies.
type Caller func(ctx context.Context, method string, params json.RawMessage) (any, error)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// Token, when set, is the bearer token every request must carry. It
	// is required by the worker for any address beyond loopback (CheckAddr).
	Token string
	// MaxBodyBytes bounds a request body (default 16 MiB); more is 413.
	MaxBodyBytes int64
	// MaxBodyBytesInFlight bounds the bytes of request bodies being read
	// or held by calls, all requests together (default 64 MiB); past it a
	// request is answered 429 Busy before its body is read.
	MaxBodyBytesInFlight int64
	// MaxConns bounds open connections (default 1024); past it a new
	// connection is answered 503 and closed.
	MaxConns int
	// MaxHeaderBytes bounds the request line and headers (default 64 KiB).
	MaxHeaderBytes int
	// CORSOrigins are the origins (scheme://host[:port], or "*") whose
	// browser pages may call the API. Empty: no CORS headers at all, and
	// requests that carry an Origin header are refused.
	CORSOrigins []string
	// ReadHeaderTimeout bounds reading the request line and headers
	// (default 10 s), ReadTimeout the whole request, body included
	// (default 1 min).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer (default 2 min). A call gets until a few seconds before
	// it, so that it is answered 408 rather than cut off.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle that long (default 2 min).
	IdleTimeout time.Duration
	// Grace is how long requests in flight may go on after a shutdown
	// starts before they are cancelled (default 10 s).
	Grace time.Duration
	// Log receives one access line per request and the server's own errors.
	Log zerolog.Logger
	// Metrics, when set, answers /metrics (Prometheus), behind the same
	// token, CORS and Host checks as the API's routes.
	Metrics http.Handler
}

// Defaults for Options.
const (
	DefaultMaxBodyBytes      = 16 << 20
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyInFlight   = 64 << 20
	DefaultMaxConns          = 1024
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultGrace             = 10 * time.Second
)

// Server is the HTTP API in front of a Caller.
type Server struct {
	call    Caller
	opts    Options
	log     zerolog.Logger
	origins map[string]bool
	anyOrig bool

	// base is the parent of every request's context: cancelling it after
	// the grace period cancels the calls still running.
	base       context.Context
	cancelBase context.CancelCauseFunc
	inFlight   sync.WaitGroup
	// bodies is the budget of request body bytes in flight.
	bodies budget
}

// ErrShuttingDown is the cause of the cancellation of requests still
// running when the grace period ends.
var ErrShuttingDown = errors.New("the worker is shutting down")

// New returns a Server that answers every request through call.
func New(call Caller, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.MaxBodyBytesInFlight <= 0 {
		opts.MaxBodyBytesInFlight = DefaultMaxBodyInFlight
	}
	if opts.MaxBodyBytesInFlight < opts.MaxBodyBytes {
		opts.MaxBodyBytesInFlight = opts.MaxBodyBytes
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Grace < 0 {
		opts.Grace = 0
	}
	s := &Server{call: call, opts: opts, log: opts.Log, origins: map[string]bool{}}
	for _, o := range opts.CORSOrigins {
		if o == "*" {
			s.anyOrig = true
		}
		s.origins[strings.ToLower(o)] = true
	}
	s.base, s.cancelBase = context.WithCancelCause(context.Background())
	s.bodies.max = opts.MaxBodyBytesInFlight
	return s
}

// callTimeout is how long a call may take: a little less than the write
// timeout, so that a call stuck in the queue or in Podman is answered 408
// while the connection can still carry the answer.
func (s *Server) callTimeout() time.Duration {
	return s.opts.WriteTimeout - min(5*time.Second, s.opts.WriteTimeout/10)
}

// Handler is the whole API as an http.Handler: access log, panic
// recovery, CORS, auth, then the routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// Serve answers requests on ln until ctx ends, then drains: it stops
// accepting, lets requests in flight finish within the grace period,
// cancels those still running after it (they are answered 503), and
// returns once every answer is written. It returns nil after a drain, or
// the error that stopped the listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		// net/http's own complaints (a panic it caught, a bad TLS
		// handshake) go to the worker's log as JSON like everything else.
		ErrorLog: stdlog.New(logWriter{s.log}, "", 0),
	}
	served := make(chan error, 1)
	ln = &limitListener{Listener: ln, max: s.opts.MaxConns, log: s.log}
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		s.cancelBase(err)
		return fmt.Errorf("serving http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	// Shutdown closes the listener and idle connections at once, then
	// waits for every connection to go idle: each request in flight is
	// answered and its connection closed after the answer.
	graceCtx, cancel := context.WithTimeout(context.Background(), s.opts.Grace)
	err := hs.Shutdown(graceCtx)
	cancel()
	if err != nil {
		s.log.Warn().Dur("grace", s.opts.Grace).Msg("requests still running after the grace period; cancelling them")
		s.cancelBase(ErrShuttingDown)
		s.inFlight.Wait()
		// The cancelled requests' answers are written once their handlers
		// return; give the connections a moment to flush them.
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if hs.Shutdown(flushCtx) != nil {
			hs.Close()
		}
		cancel()
	}
	s.inFlight.Wait()
	s.cancelBase(ErrShuttingDown)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logWriter turns net/http's log lines into warnings.
type logWriter struct{ log zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("component", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
