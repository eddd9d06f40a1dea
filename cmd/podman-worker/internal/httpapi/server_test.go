package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/internal/testbuf"
)

// These tests drive the HTTP layer alone, with a stand-in Caller that
// records what each request called: no Podman is involved, so none is
// faked. The built worker over a real private Podman is tested in
// cmd/podman-worker (http_test.go).

type recordedCall struct {
	method string
	params string
}

// standIn answers every call with result (or err) and records it.
type standIn struct {
	mu     sync.Mutex
	calls  []recordedCall
	result any
	err    error
}

func (c *standIn) call(_ context.Context, method string, params json.RawMessage) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, recordedCall{method, string(params)})
	if c.err != nil {
		return nil, c.err
	}
	if c.result != nil {
		return c.result, nil
	}
	if method == "health" {
		return map[string]any{"status": "ok"}, nil
	}
	return map[string]any{"method": method}, nil
}

func (c *standIn) last() recordedCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) == 0 {
		return recordedCall{}
	}
	return c.calls[len(c.calls)-1]
}

// do sends one request to h as a loopback client would.
func do(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = "127.0.0.1:8080"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// envelope decodes an answer and checks the seed's shape: success, the
// key or error, an ISO-8601 timestamp, and nothing else.
func envelope(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("the answer is not JSON (%v): %q", err, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	ts, _ := m["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("timestamp %q is not ISO-8601: %v", ts, err)
	}
	if m["success"] == false {
		e, _ := m["error"].(map[string]any)
		if e["code"] != float64(w.Code) || e["message"] == "" || e["type"] == "" {
			t.Errorf("error %v: want message, type and code %d", e, w.Code)
		}
	}
	return m
}

// Every route of the seed calls its method with the params the worker
// takes, and answers under the seed's key.
func TestRoutesCallTheirMethods(t *testing.T) {
	for _, tc := range []struct {
		method, target, body string
		call, params, key    string
		status               int
	}{
		{"POST", "/api/v1/containers", `{"image":"busybox","name":"web","command":"sleep 1","environment":{"A":"1"}}`,
			"create", `{"command":"sleep 1","environment":{"A":"1"},"image":"busybox","name":"web"}`, "container", 201},
		{"POST", "/api/v1/containers", `{"image":"busybox","name":"web","ports":{"80/tcp":8080},"volumes":{"/srv":{"bind":"/srv","mode":"ro"}}}`,
			"create", `{"image":"busybox","name":"web","network_mode":"bridge","ports":["8080:80/tcp"],"volumes":["/srv:/srv:ro"]}`, "container", 201},
		{"POST", "/api/v1/containers", `{"image":"busybox","name":"web","ports":["8080:80"],"network_mode":"none"}`,
			"create", `{"image":"busybox","name":"web","network_mode":"none","ports":["8080:80"]}`, "container", 201},
		{"GET", "/api/v1/containers", "", "ps", `{"all":true}`, "containers", 200},
		{"HEAD", "/api/v1/containers", "", "ps", `{"all":true}`, "", 200},
		{"POST", "/api/v1/containers/web/start", "", "start", `{"name":"web"}`, "container", 200},
		{"POST", "/api/v1/containers/web/stop", "", "stop", `{"name":"web"}`, "container", 200},
		{"POST", "/api/v1/containers/web/stop", `{"timeout":0}`, "stop", `{"name":"web","timeout":0}`, "container", 200},
		{"DELETE", "/api/v1/containers/web", "", "rm", `{"name":"web"}`, "container", 200},
		{"DELETE", "/api/v1/containers/web?force=true", "", "rm", `{"force":true,"name":"web"}`, "container", 200},
		{"DELETE", "/api/v1/containers/web?force=False", "", "rm", `{"force":false,"name":"web"}`, "container", 200},
		{"GET", "/api/v1/containers/web/logs", "", "logs", `{"name":"web"}`, "logs", 200},
		{"GET", "/api/v1/containers/web/logs?tail=5", "", "logs", `{"name":"web","tail":5}`, "logs", 200},
		{"POST", "/api/v1/containers/web/users", `{"username":"bob","password":"pw","shell":"/bin/sh"}`,
			"add_user", `{"name":"web","password":"pw","shell":"/bin/sh","username":"bob"}`, "user", 200},
		{"POST", "/api/v1/containers/web/files", `{"dest_path":"/tmp/a","content":"x","mode":"0600"}`,
			"add_file", `{"content":"x","dest_path":"/tmp/a","mode":"0600","name":"web"}`, "file", 200},
		{"POST", "/api/v1/containers/web/exec", `{"command":["id"],"user":"bob"}`,
			"exec", `{"command":["id"],"name":"web","user":"bob"}`, "execution", 200},
		{"POST", "/api/v1/containers/web/exec", `{"command":"id","name":"web"}`,
			"exec", `{"command":"id","name":"web"}`, "execution", 200},
		{"POST", "/api/v1/containers/a%20b/exec", `{"command":"id"}`,
			"exec", `{"command":"id","name":"a b"}`, "execution", 200},
		{"GET", "/api/v1/health", "", "health", ``, "health", 200},
		{"GET", "/api/v1/metrics", "", "metrics", ``, "metrics", 200},
	} {
		c := &standIn{}
		h := New(c.call, Options{Log: zerolog.Nop()}).Handler()
		w := do(h, tc.method, tc.target, tc.body)
		name := tc.method + " " + tc.target + " " + tc.body
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d: %s", name, w.Code, tc.status, w.Body)
			continue
		}
		got := c.last()
		if got.method != tc.call || !sameJSON(got.params, tc.params) {
			t.Errorf("%s: called %s %s, want %s %s", name, got.method, got.params, tc.call, tc.params)
		}
		if tc.method == "HEAD" {
			continue
		}
		m := envelope(t, w)
		if m["success"] != true || m[tc.key] == nil || len(m) != 3 {
			t.Errorf("%s: answered %s, want success and the result under %q", name, w.Body, tc.key)
		}
	}
}

func sameJSON(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// Each refusal of the HTTP layer is the seed's error envelope with its
// status, and no method is called.
func TestRequestsRefusedBeforeAnyCall(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, body string
		header                     []string
		status                     int
		typ, message               string
	}{
		{"invalid JSON", "POST", "/api/v1/containers", `{"image":`, nil, 400, "BadRequest", "Invalid JSON in the request body"},
		{"no body", "POST", "/api/v1/containers/web/exec", "", nil, 400, "BadRequest", "Request must be JSON"},
		{"array body", "POST", "/api/v1/containers", `[1]`, nil, 400, "BadRequest", "must be a JSON object of named fields, got an array"},
		{"text/plain", "POST", "/api/v1/containers/web/exec", `{"command":"id"}`, []string{"Content-Type", "text/plain"}, 400, "BadRequest", `the Content-Type is "text/plain"`},
		{"no content type", "POST", "/api/v1/containers/web/stop", `{"timeout":1}`, []string{"Content-Type", ""}, 400, "BadRequest", `Request must be JSON`},
		{"name in the body differs", "POST", "/api/v1/containers/web/exec", `{"command":"id","name":"other"}`, nil, 400, "BadRequest", `"name": the body names "other", the path "web"`},
		{"bad force", "DELETE", "/api/v1/containers/web?force=maybe", "", nil, 400, "BadRequest", `"force": must be true or false, got "maybe"`},
		{"bad tail", "GET", "/api/v1/containers/web/logs?tail=all", "", nil, 400, "BadRequest", `"tail": must be a whole number of lines`},
		{"bad ports", "POST", "/api/v1/containers", `{"image":"i","name":"n","ports":{"x":1}}`, nil, 400, "BadRequest", `"ports": the key "x"`},
		{"unknown route", "GET", "/api/v1/images", "", nil, 404, "NotFound", "no route GET /api/v1/images"},
		{"outside the API", "GET", "/", "", nil, 404, "NotFound", "no route GET /"},
		{"empty name", "POST", "/api/v1/containers//start", "", nil, 404, "NotFound", "no route"},
		{"unknown action", "POST", "/api/v1/containers/web/restart", "", nil, 404, "NotFound", "no route"},
		{"too deep", "GET", "/api/v1/containers/web/logs/x", "", nil, 404, "NotFound", "no route"},
		{"wrong method", "PUT", "/api/v1/containers", "", nil, 405, "MethodNotAllowed", "PUT is not allowed on /api/v1/containers; allowed: GET, HEAD, OPTIONS, POST"},
		{"wrong method on a name", "GET", "/api/v1/containers/web", "", nil, 405, "MethodNotAllowed", "allowed: DELETE, OPTIONS"},
		{"GET on exec", "GET", "/api/v1/containers/web/exec", "", nil, 405, "MethodNotAllowed", "allowed: OPTIONS, POST"},
		{"not loopback", "GET", "/api/v1/health", "", []string{"Host", "evil.example:8080"}, 403, "Forbidden", `the Host "evil.example:8080" is not a loopback address`},
		{"cross-origin", "POST", "/api/v1/containers/web/stop", "", []string{"Origin", "https://evil.example"}, 403, "Forbidden", "cross-origin requests from https://evil.example are not allowed"},
	} {
		c := &standIn{}
		h := New(c.call, Options{Log: zerolog.Nop()}).Handler()
		var w *httptest.ResponseRecorder
		if len(tc.header) == 2 && tc.header[0] == "Host" {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Host = tc.header[1]
			w = httptest.NewRecorder()
			h.ServeHTTP(w, req)
		} else {
			w = do(h, tc.method, tc.target, tc.body, tc.header...)
		}
		m := envelope(t, w)
		e, _ := m["error"].(map[string]any)
		if w.Code != tc.status || m["success"] != false || e["type"] != tc.typ || !strings.Contains(fmt.Sprint(e["message"]), tc.message) {
			t.Errorf("%s: %s %s %s answered %d %s; want %d %s saying %q", tc.name, tc.method, tc.target, tc.body, w.Code, w.Body, tc.status, tc.typ, tc.message)
		}
		if tc.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s: 405 without an Allow header", tc.name)
		}
		if len(c.calls) != 0 {
			t.Errorf("%s: called %v; a refused request calls nothing", tc.name, c.calls)
		}
		if w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: CORS header sent without --http-cors-origins", tc.name)
		}
	}
}

// A method's error keeps its kind's status and type (rpc's table) and its
// data; a Cancelled call, which only shutdown makes visible, is a 503.
func TestMethodErrorsKeepTheirKind(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		typ    string
	}{
		{fault.Errorf(fault.KindNotFound, "no such container: ghost").With("container", "ghost"), 404, "NotFound"},
		{fault.Errorf(fault.KindInvalidParams, "Invalid params: missing required field \"image\"").With("field", "image"), 400, "BadRequest"},
		{fault.Errorf(fault.KindForbidden, "Forbidden: \"memory\"").With("field", "memory"), 403, "Forbidden"},
		{fault.Errorf(fault.KindConflict, "name in use"), 409, "Conflict"},
		{fault.Errorf(fault.KindTimeout, "the call did not finish"), 408, "Timeout"},
		{fault.Errorf(fault.KindUnavailable, "Podman is not reachable").With("socket", "unix:///x"), 503, "Unavailable"},
		{fault.Errorf(fault.KindPodman, "podman said no"), 500, "PodmanError"},
		{fault.Errorf(fault.KindCancelled, "Request cancelled: the worker is shutting down"), 503, "Cancelled"},
		{context.DeadlineExceeded, 408, "Timeout"},
		{errors.New("boom"), 500, "InternalError"},
	} {
		c := &standIn{err: tc.err}
		w := do(New(c.call, Options{Log: zerolog.Nop()}).Handler(), "POST", "/api/v1/containers/web/start", "")
		m := envelope(t, w)
		e, _ := m["error"].(map[string]any)
		if w.Code != tc.status || e["type"] != tc.typ || e["message"] != tc.err.Error() && !strings.Contains(fmt.Sprint(e["message"]), tc.err.Error()) {
			t.Errorf("%v: answered %d %s; want %d %s", tc.err, w.Code, w.Body, tc.status, tc.typ)
		}
		var re *fault.Error
		if errors.As(tc.err, &re) {
			for k, v := range re.Fields {
				if e[k] != v {
					t.Errorf("%v: error member %s = %v, want %v", tc.err, k, e[k], v)
				}
			}
		}
	}
}

// /health answers 503 with the worker's view when Podman does not answer.
func TestHealthIs503WhilePodmanIsDown(t *testing.T) {
	c := &standIn{result: map[string]any{"status": "degraded", "podman": map[string]any{"connected": false, "socket": "unix:///x", "error": "Podman is not reachable at unix:///x"}}}
	w := do(New(c.call, Options{Log: zerolog.Nop()}).Handler(), "GET", "/api/v1/health", "")
	m := envelope(t, w)
	e, _ := m["error"].(map[string]any)
	h, _ := m["health"].(map[string]any)
	if w.Code != 503 || e["type"] != "Unavailable" || e["message"] != "Podman is not reachable at unix:///x" || h["status"] != "degraded" {
		t.Errorf("health with Podman down answered %d %s; want 503 Unavailable with the health details", w.Code, w.Body)
	}
}

func TestBodyLimit(t *testing.T) {
	c := &standIn{}
	h := New(c.call, Options{MaxBodyBytes: 1024, Log: zerolog.Nop()}).Handler()
	big := `{"command":"` + strings.Repeat("x", 2000) + `"}`
	w := do(h, "POST", "/api/v1/containers/web/exec", big)
	m := envelope(t, w)
	e, _ := m["error"].(map[string]any)
	if w.Code != 413 || e["type"] != "TooLarge" || !strings.Contains(fmt.Sprint(e["message"]), "larger than 1024 bytes") {
		t.Errorf("a %d-byte body over a 1k limit answered %d %s; want 413 TooLarge", len(big), w.Code, w.Body)
	}
	// Without Content-Length (chunked) the limit holds while reading.
	req := httptest.NewRequest("POST", "/api/v1/containers/web/exec", io.MultiReader(strings.NewReader(big)))
	req.Host, req.ContentLength = "127.0.0.1", -1
	req.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 413 {
		t.Errorf("a chunked body over the limit answered %d %s; want 413", w.Code, w.Body)
	}
	if len(c.calls) != 0 {
		t.Errorf("a body over the limit called %v", c.calls)
	}
	if w := do(h, "POST", "/api/v1/containers/web/exec", `{"command":"id"}`); w.Code != 200 {
		t.Errorf("a body within the limit answered %d %s", w.Code, w.Body)
	}
}

func TestBearerToken(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, header string
		status       int
		challenge    string
	}{
		{"none", "", 401, `Bearer realm="podman-worker"`},
		{"wrong", "Bearer 0123456789abcdef0123456789abcdeX", 401, `Bearer realm="podman-worker", error="invalid_token"`},
		{"prefix of it", "Bearer 0123456789abcdef", 401, `Bearer realm="podman-worker", error="invalid_token"`},
		{"basic", "Basic " + token, 401, `Bearer realm="podman-worker", error="invalid_token"`},
		{"right", "Bearer " + token, 200, ""},
		{"scheme in lower case", "bearer " + token, 200, ""},
	} {
		c := &standIn{}
		h := New(c.call, Options{Token: token, Log: zerolog.Nop()}).Handler()
		// With a token any Host is fine: the token is what keeps pages out.
		w := do(h, "GET", "/api/v1/containers", "", "Authorization", tc.header, "Host", "worker.example:8080")
		if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: answered %d (WWW-Authenticate %q) %s; want %d (%q)", tc.name, w.Code, w.Header().Get("WWW-Authenticate"), w.Body, tc.status, tc.challenge)
		}
		if tc.status == 401 {
			m := envelope(t, w)
			if e, _ := m["error"].(map[string]any); e["type"] != "Unauthorized" || len(c.calls) != 0 {
				t.Errorf("%s: %s, calls %v; want Unauthorized and no call", tc.name, w.Body, c.calls)
			}
			if strings.Contains(w.Body.String(), token) {
				t.Errorf("%s: the answer holds the token", tc.name)
			}
		}
	}
}

func TestCORS(t *testing.T) {
	c := &standIn{}
	h := New(c.call, Options{CORSOrigins: []string{"https://app.example"}, Token: "0123456789abcdef0123456789abcdef", Log: zerolog.Nop()}).Handler()

	// A preflight is answered without credentials (browsers send none).
	w := do(h, "OPTIONS", "/api/v1/containers/web/exec", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight from an allowed origin: %d %v", w.Code, w.Header())
	}
	// The request itself still needs the token, and is answered with the origin allowed.
	w = do(h, "POST", "/api/v1/containers/web/exec", `{"command":"id"}`, "Origin", "https://app.example", "Authorization", "Bearer 0123456789abcdef0123456789abcdef")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || w.Header().Get("Vary") != "Origin" {
		t.Errorf("request from an allowed origin: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w = do(h, "POST", "/api/v1/containers/web/exec", `{"command":"id"}`, "Origin", "https://app.example")
	if w.Code != 401 {
		t.Errorf("request from an allowed origin without the token: %d, want 401", w.Code)
	}
	// Another origin, preflight or not, is refused.
	for _, method := range []string{"OPTIONS", "GET"} {
		w = do(h, method, "/api/v1/containers", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
		if w.Code != 403 || w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s from another origin: %d %v, want 403 without CORS headers", method, w.Code, w.Header())
		}
	}
	// Without an Origin header (curl, requests, Go) nothing about CORS is sent.
	w = do(h, "GET", "/api/v1/containers", "", "Authorization", "Bearer 0123456789abcdef0123456789abcdef")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a request without Origin: %d %v", w.Code, w.Header())
	}
	// OPTIONS without a preflight answers the route's methods, as Flask did.
	w = do(h, "OPTIONS", "/api/v1/containers", "", "Authorization", "Bearer 0123456789abcdef0123456789abcdef")
	if w.Code != 204 || w.Header().Get("Allow") != "GET, HEAD, OPTIONS, POST" {
		t.Errorf("OPTIONS: %d %v", w.Code, w.Header())
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		loopback bool
		err      string
	}{
		{"127.0.0.1:8080", true, ""},
		{"127.0.0.1:0", true, ""},
		{"[::1]:8080", true, ""},
		{"localhost:8080", true, ""},
		{"0.0.0.0:8080", false, ""},
		{"[::]:8080", false, ""},
		{":8080", false, ""},
		{"192.168.1.10:8080", false, ""},
		{"worker.example:8080", false, ""},
		{"8080", false, "must be HOST:PORT"},
		{"127.0.0.1:http", false, "the port must be a number"},
		{"127.0.0.1:70000", false, "the port must be a number"},
	} {
		loopback, err := CheckAddr(tc.addr)
		if loopback != tc.loopback || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("CheckAddr(%q) = %v, %v; want %v, %q", tc.addr, loopback, err, tc.loopback, tc.err)
		}
	}
}

func TestCheckTokenAndOrigins(t *testing.T) {
	for token, ok := range map[string]bool{
		"0123456789abcdef": true, "c2VjcmV0LXRva2VuLXZhbHVlcw==": true,
		"short": false, "has a space in it ok": false, "0123456789abcdef\n": false,
	} {
		if err := CheckToken(token); (err == nil) != ok {
			t.Errorf("CheckToken(%q) = %v, want ok %v", token, err, ok)
		}
	}
	got, err := ParseOrigins(" https://App.example , http://localhost:3000/,*")
	if err != nil || strings.Join(got, " ") != "https://app.example http://localhost:3000 *" {
		t.Errorf("ParseOrigins = %q, %v", got, err)
	}
	for _, bad := range []string{"app.example", "ftp://x", "https://x/path", "https://"} {
		if _, err := ParseOrigins(bad); err == nil {
			t.Errorf("ParseOrigins(%q) accepted it", bad)
		}
	}
}

// A panic in a call is that request's 500, and the server goes on.
func TestPanicIsA500(t *testing.T) {
	h := New(func(context.Context, string, json.RawMessage) (any, error) { panic("oops") }, Options{Log: zerolog.Nop()}).Handler()
	w := do(h, "GET", "/api/v1/metrics", "")
	m := envelope(t, w)
	if e, _ := m["error"].(map[string]any); w.Code != 500 || e["type"] != "InternalError" {
		t.Errorf("a panicking call answered %d %s", w.Code, w.Body)
	}
}

// The access log has one line per request, and never the body, the query
// or the Authorization header.
func TestAccessLog(t *testing.T) {
	var logs testbuf.Buffer
	const token = "0123456789abcdef0123456789abcdef"
	h := New((&standIn{}).call, Options{Token: token, Log: zerolog.New(&logs)}).Handler()
	do(h, "POST", "/api/v1/containers/web/users?secret=q", `{"username":"bob","password":"hunter2-secret"}`, "Authorization", "Bearer "+token)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one log line, got %q", lines)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"message": "http", "method": "POST", "path": "/api/v1/containers/web/users", "status": float64(200), "call": "add_user"} {
		if m[k] != want {
			t.Errorf("log %s = %v, want %v (%s)", k, m[k], want, lines[0])
		}
	}
	for _, k := range []string{"bytes", "duration_ms", "remote"} {
		if _, ok := m[k]; !ok {
			t.Errorf("log line without %s: %s", k, lines[0])
		}
	}
	for _, secret := range []string{token, "hunter2-secret", "secret=q"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q: %s", secret, logs.String())
		}
	}
}

// serve runs a Server on a loopback port until the test ends. wait
// returns what Serve returned, once it has.
func serve(t *testing.T, call Caller, opts Options) (url string, stop context.CancelFunc, wait func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var serveErr error
	go func() {
		serveErr = New(call, opts).Serve(ctx, ln)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String(), cancel, func() error { <-done; return serveErr }
}

// A call that lasts longer than ReadTimeout is not cut short: ReadTimeout
// bounds reading the request, and net/http lifts the read deadline once
// the body is read, when it starts watching for a client that goes away
// (which cancels the call).
func TestLongCallOutlivesReadTimeout(t *testing.T) {
	slow := func(ctx context.Context, _ string, _ json.RawMessage) (any, error) {
		select {
		case <-time.After(1500 * time.Millisecond):
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	url, _, _ := serve(t, slow, Options{ReadTimeout: 300 * time.Millisecond, Log: zerolog.Nop()})
	resp, err := http.Post(url+"/api/v1/containers/web/exec", "application/json", strings.NewReader(`{"command":"sleep 1"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(data), `"execution":"done"`) {
		t.Errorf("a 1.5 s call with a 300 ms ReadTimeout answered %d %s; want 200", resp.StatusCode, data)
	}
}

// On shutdown, a request in flight is answered; one still running after
// the grace period is cancelled and answered 503; then Serve returns.
func TestServeDrains(t *testing.T) {
	started := make(chan string, 2)
	call := func(ctx context.Context, method string, params json.RawMessage) (any, error) {
		started <- string(params)
		if strings.Contains(string(params), "forever") {
			<-ctx.Done()
			return nil, fault.Errorf(fault.KindCancelled, "Request cancelled: the worker is shutting down")
		}
		time.Sleep(300 * time.Millisecond)
		return "finished", nil
	}
	url, stop, wait := serve(t, call, Options{Grace: 1 * time.Second, Log: zerolog.Nop()})
	type answer struct {
		status int
		body   string
	}
	answers := make(chan answer, 2)
	for _, cmd := range []string{"short", "forever"} {
		go func() {
			resp, err := http.Post(url+"/api/v1/containers/web/exec", "application/json", strings.NewReader(`{"command":"`+cmd+`"}`))
			if err != nil {
				answers <- answer{0, err.Error()}
				return
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			answers <- answer{resp.StatusCode, string(data)}
		}()
	}
	<-started
	<-started
	stop()
	got := map[int]string{}
	for range 2 {
		a := <-answers
		got[a.status] = a.body
	}
	if !strings.Contains(got[200], `"execution":"finished"`) || !strings.Contains(got[503], `"type":"Cancelled"`) {
		t.Errorf("after shutdown began: %v; want the short call answered 200 and the endless one 503 Cancelled", got)
	}
	if err := wait(); err != nil {
		t.Errorf("Serve returned %v after a drain, want nil", err)
	}
	if _, err := http.Get(url + "/api/v1/health"); err == nil {
		t.Errorf("a request after the drain was answered; the listener should be closed")
	}
}
