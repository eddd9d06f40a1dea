package httpapi

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// serveHTTP is every request's way: access log and panic recovery around
// the guard (CORS, Host, auth) and the routes.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.inFlight.Add(1)
	defer s.inFlight.Done()
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		for _, f := range rec.release {
			f()
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("path", r.URL.Path).Msg("http handler panicked")
			if rec.status == 0 {
				writeError(rec, newError(http.StatusInternalServerError, "InternalError", fmt.Sprintf("internal error: %v", p)))
			}
		}
		s.accessLog(r, rec, time.Since(start))
	}()

	if s.guard(rec, r) {
		return
	}
	if r.URL.Path == "/metrics" && s.opts.Metrics != nil {
		s.opts.Metrics.ServeHTTP(rec, r)
		return
	}
	byMethod, name, ok := match(r.URL.EscapedPath())
	if !ok {
		writeError(rec, newError(http.StatusNotFound, "NotFound",
			fmt.Sprintf("no route %s %s: the API's routes are under %s (operations.md, Drop-in HTTP API)", r.Method, r.URL.Path, Prefix)))
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt, ok := byMethod[method]
	switch {
	case !ok && r.Method == http.MethodOptions:
		// What Flask answered for OPTIONS on any route.
		rec.Header().Set("Allow", allowed(byMethod))
		rec.WriteHeader(http.StatusNoContent)
	case !ok:
		rec.Header().Set("Allow", allowed(byMethod))
		writeError(rec, newError(http.StatusMethodNotAllowed, "MethodNotAllowed",
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allowed(byMethod))))
	default:
		s.serveRoute(rec, r, rt, name)
		if r.Context().Err() != nil && s.base.Err() == nil {
			rec.gone = true // the client went away before its answer
		}
	}
}

// recorder keeps what the access log says about an answer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	call   string // the worker method the request called
	gone   bool
	// release runs when the request is over (its body's reservation).
	release []func()
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog writes one line per request: never the body, the query or the
// Authorization header.
func (s *Server) accessLog(r *http.Request, rec *recorder, took time.Duration) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	ev := s.log.Info()
	if status >= 500 {
		ev = s.log.Warn()
	}
	if rec.gone {
		status = 499 // nginx's "client closed request": nobody read the answer
	}
	if rec.call != "" {
		ev = ev.Str("call", rec.call)
	}
	ev.Str("method", r.Method).Str("path", r.URL.Path).Int("status", status).Int64("bytes", rec.bytes).
		RawJSON("duration_ms", millis(took)).Str("remote", r.RemoteAddr).Msg("http")
}

// millis writes d in milliseconds with microsecond precision, as the
// protocol's call log line does.
func millis(d time.Duration) []byte {
	return strconv.AppendFloat(nil, float64(d.Microseconds())/1000, 'f', -1, 64)
}
