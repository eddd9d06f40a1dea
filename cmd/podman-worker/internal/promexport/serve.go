package promexport

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/podman-worker/podman-worker/cmd/podman-worker/internal/httpapi"
)

// Config is --metrics-addr and its token.
type Config struct {
	Addr  string // "" serves no listener of its own
	Token string // bearer token a scrape must carry; required beyond loopback
}

// ParseConfig reads --metrics-addr with the HTTP API's token rules: a
// token from tokenFile, else envToken, else fallback (the HTTP API's own
// token, when --http has one); an address beyond loopback without a token
// is refused.
func ParseConfig(addr, tokenFile, envToken, fallback string) (Config, error) {
	var c Config
	if addr == "" {
		if tokenFile != "" {
			return c, fmt.Errorf("--metrics-token-file applies to --metrics-addr: give --metrics-addr ADDR (or PODMAN_WORKER_METRICS_ADDR) too")
		}
		return c, nil
	}
	loopback, err := httpapi.CheckAddr(addr)
	if err != nil {
		return c, fmt.Errorf("--metrics-addr / PODMAN_WORKER_METRICS_ADDR: %v", err)
	}
	c.Addr = addr
	switch {
	case tokenFile != "":
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return c, fmt.Errorf("--metrics-token-file / PODMAN_WORKER_METRICS_TOKEN_FILE: %v", err)
		}
		c.Token = strings.TrimSpace(string(data))
		if err := httpapi.CheckToken(c.Token); err != nil {
			return c, fmt.Errorf("--metrics-token-file / PODMAN_WORKER_METRICS_TOKEN_FILE: %s: %v", tokenFile, err)
		}
	case envToken != "":
		c.Token = strings.TrimSpace(envToken)
		if err := httpapi.CheckToken(c.Token); err != nil {
			return c, fmt.Errorf("PODMAN_WORKER_METRICS_TOKEN: %v", err)
		}
	default:
		c.Token = fallback
	}
	if !loopback && c.Token == "" {
		return c, fmt.Errorf("--metrics-addr / PODMAN_WORKER_METRICS_ADDR: %q listens beyond this machine, so scrapes need a bearer token: "+
			"give --metrics-token-file FILE or PODMAN_WORKER_METRICS_TOKEN (or --http with a token), or listen on 127.0.0.1", addr)
	}
	return c, nil
}

// GuardedHandler serves GET (and HEAD) /metrics behind token, when set,
// and without one only to requests whose Host is a loopback one; every
// other path is 404.
func (e *Exporter) GuardedHandler(token string) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.Error(w, "not found: the worker serves /metrics only here", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if token == "" && !loopbackHost(r.Host) {
			// As the HTTP API: a page could reach a loopback listener
			// through a DNS name pointed at 127.0.0.1 and read the answer.
			http.Error(w, "forbidden: without a token only a loopback Host is answered", http.StatusForbidden)
			return
		}
		if token != "" && !Authorized(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="podman-worker"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		e.handler.ServeHTTP(w, r)
	})
}

// loopbackHost says whether a Host header names this machine: a loopback
// address or localhost.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Authorized compares an Authorization header with the token's hash in
// constant time, as the HTTP API does.
func Authorized(header string, want [sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Serve answers scrapes on ln until ctx ends or stop is called; stop
// closes the listener and waits a moment for a scrape in flight.
func (e *Exporter) Serve(ctx context.Context, ln net.Listener, token string) (stop func()) {
	srv := &http.Server{
		Handler:           e.GuardedHandler(token),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed: scrapes stop, calls go on
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = srv.Close()
		case <-done:
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
}
