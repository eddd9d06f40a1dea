package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Who may call: the seed's Flask service had no auth at all. The worker
// listens on loopback unless given a token, refuses pages in a browser
// unless the operator lists their origin, and refuses Host names that are
// not loopback while it has no token (a DNS name that an attacker points
// at 127.0.0.1 would otherwise make a page same-origin with the API).

// CheckAddr validates an --http address and says whether it is loopback
// only. An empty host (":8080"), 0.0.0.0, :: and any name other than
// localhost listen beyond this machine, or may: the worker refuses them
// without a token.
func CheckAddr(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%q must be HOST:PORT, such as 127.0.0.1:8080", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return false, fmt.Errorf("%q: the port must be a number from 0 to 65535 (0 picks a free one)", addr)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// tokenPattern is RFC 6750's b64token: what a bearer token may hold.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// MinTokenBytes is the shortest bearer token the worker accepts.
const MinTokenBytes = 16

// CheckToken says what is wrong with a bearer token, if anything.
func CheckToken(token string) error {
	switch {
	case len(token) < MinTokenBytes:
		return fmt.Errorf("the token must be at least %d characters (make one with: openssl rand -hex 32)", MinTokenBytes)
	case !tokenPattern.MatchString(token):
		return fmt.Errorf("the token may hold only letters, digits and -._~+/ (with '=' at the end), as a bearer token in a header must (make one with: openssl rand -hex 32)")
	}
	return nil
}

// ParseOrigins reads --http-cors-origins: a comma-separated list of
// origins such as https://app.example.com or http://localhost:3000, or
// "*" for any.
func ParseOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				return nil, fmt.Errorf("%q is not an origin such as https://app.example.com or http://localhost:3000 (scheme, host and port only)", o)
			}
			o = u.Scheme + "://" + u.Host
		}
		out = append(out, strings.ToLower(o))
	}
	return out, nil
}

// The CORS answer's fixed parts: the methods of the seed's routes, and the
// headers its clients send.
const (
	corsMethods = "GET, HEAD, POST, DELETE, OPTIONS"
	corsHeaders = "Authorization, Content-Type"
	corsMaxAge  = "600"
)

// guard runs before routing. It answers preflights and refusals itself
// and reports done; otherwise the request goes on to its route.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) (done bool) {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.originAllowed(origin) {
			writeError(w, newError(http.StatusForbidden, "Forbidden",
				fmt.Sprintf("cross-origin requests from %s are not allowed; the operator can allow an origin with --http-cors-origins", origin)))
			return true
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight: browsers send it without credentials, so it is
			// answered before auth.
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return true
		}
	}
	if s.opts.Token == "" {
		if host := hostOnly(r.Host); !loopbackName(host) {
			writeError(w, newError(http.StatusForbidden, "Forbidden",
				fmt.Sprintf("the Host %q is not a loopback address: without a token this worker answers only requests addressed to 127.0.0.1, [::1] or localhost", r.Host)))
			return true
		}
		return false
	}
	if !s.authorized(r.Header.Get("Authorization")) {
		challenge := `Bearer realm="podman-worker"`
		msg := "missing bearer token: send Authorization: Bearer <token>"
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
			msg = "the bearer token is not this worker's"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, newError(http.StatusUnauthorized, "Unauthorized", msg))
		return true
	}
	return false
}

func (s *Server) originAllowed(origin string) bool {
	return s.anyOrig || s.origins[strings.ToLower(origin)]
}

// authorized compares the request's bearer token with the worker's in
// constant time. Both are hashed first: ConstantTimeCompare returns at
// once on a length mismatch, which would tell the token's length.
func (s *Server) authorized(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := sha256.Sum256([]byte(s.opts.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// hostOnly drops the port of a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// loopbackName accepts the names a loopback listener is reached by
// without DNS: loopback addresses and localhost.
func loopbackName(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
