package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// The drop-in HTTP API: the built worker serving --http on a loopback port,
// driven by Go's net/http client, over a real private Podman.

// httpWorker is a worker serving the HTTP API.
type httpWorker struct {
	*worker
	addr   string // host:port it listens on
	url    string // http://addr
	token  string // sent as a bearer token when set
	client *http.Client

	stopOnce sync.Once
	code     int
}

// startHTTPWorker starts the worker with --http 127.0.0.1:0 and reads the
// address it bound from its "serving http" log line.
func startHTTPWorker(t *testing.T, args ...string) *httpWorker {
	t.Helper()
	w := startWorkerRaw(t, append([]string{"--http", "127.0.0.1:0"}, args...)...)
	hw := &httpWorker{worker: w, client: &http.Client{Timeout: 3 * time.Minute}}
	// Ended by SIGTERM, as a supervisor ends it: its stdin is not read.
	t.Cleanup(func() { hw.stop(t, time.Minute) })
	deadline := time.Now().Add(time.Minute)
	for hw.addr == "" {
		for _, line := range strings.Split(w.stderr.String(), "\n") {
			var l struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "serving http" {
				hw.addr = l.Addr
			}
		}
		select {
		case _, open := <-w.lines:
			if !open {
				t.Fatalf("the worker exited before serving http:\n%s", w.stderr.String())
			}
			t.Fatalf("the worker wrote to stdout in HTTP mode")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"serving http\" line within a minute:\n%s", w.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hw.url = "http://" + hw.addr
	return hw
}

// stop sends SIGTERM and returns the exit status.
func (hw *httpWorker) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	return hw.wait(t, within, true)
}

// wait returns the exit status once the worker has exited, after sending
// SIGTERM if told to. Only the first call waits; later calls return its
// status (a second SIGTERM would kill the worker).
func (hw *httpWorker) wait(t *testing.T, within time.Duration, sigterm bool) int {
	t.Helper()
	hw.stopOnce.Do(func() {
		if sigterm {
			_ = hw.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case err := <-hw.done:
			var ee interface{ ExitCode() int }
			if errors.As(err, &ee) {
				hw.code = ee.ExitCode()
			} else if err != nil {
				t.Errorf("waiting for the worker: %v", err)
				hw.code = -1
			}
		case <-time.After(within):
			t.Errorf("the worker did not exit within %v of SIGTERM", within)
			hw.code = -1
		}
	})
	return hw.code
}

// answer is one HTTP exchange's outcome.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// errType is the error's type, or "" for a success.
func (a answer) errType() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, strings.TrimSpace(a.raw)) }

// do sends one request; body, when set, is sent as application/json.
// header holds name, value pairs.
func (hw *httpWorker) do(t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, hw.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if hw.token != "" {
		req.Header.Set("Authorization", "Bearer "+hw.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hw.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	if method != http.MethodHead && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, &a.body); err != nil {
			t.Fatalf("%s %s answered %d with a body that is not JSON: %q", method, path, resp.StatusCode, data)
		}
	}
	return a
}

// must fails the test unless the answer has the status.
func must(t *testing.T, a answer, status int, what string) map[string]any {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: answered %s, want %d", what, a, status)
	}
	return a.body
}

// TestHTTPGolden replays testdata/golden-http/*.txtar through the built
// worker serving --http, each file against a fresh private service, and
// compares the normalized transcript. See runHTTPGolden for the format.
func TestHTTPGolden(t *testing.T) {
	runGoldenSuite(t, goldenSuite{test: "TestHTTPGolden", dir: "golden-http", in: "requests", out: "transcript", play: playHTTP})
}

// Every route of the seed on one container's life, as a client of the
// Flask service used them, with podman-py's shapes for the create fields.
func TestHTTPCreateTakesPodmanPyShapes(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "greeting"), []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The operator allows bridge networking (for the port) and the host
	// folder (for the volume).
	hw := startHTTPWorker(t, "--socket", service.URI, "--network-modes", "bridge", "--mount-roots", host)
	port := freePort(t)
	body := fmt.Sprintf(`{"image":"localhost/busybox:latest","name":"pyshapes",`+
		`"command":["/bin/sh","-c","mkdir -p /tmp/www && echo served > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],`+
		`"environment":{"GREETING":"hi"},"ports":{"8080/tcp":["127.0.0.1",%d]},"volumes":{%q:{"bind":"/data","mode":"ro"}}}`, port, host)
	created := must(t, hw.do(t, "POST", "/api/v1/containers", body), 201, "create with podman-py's ports and volumes")
	defer hw.do(t, "DELETE", "/api/v1/containers/pyshapes?force=true", "")
	if c, _ := created["container"].(map[string]any); c["name"] != "pyshapes" || len(fmt.Sprint(c["id"])) != 64 {
		t.Errorf("create answered %v", created)
	}

	// The port object became a published port on 127.0.0.1.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(data) != "served\n" {
				t.Errorf("GET through the published port: %q", data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("{\"8080/tcp\": [\"127.0.0.1\", %d]} published nothing: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The volume object became a read-only bind mount, the environment object the environment.
	exec := must(t, hw.do(t, "POST", "/api/v1/containers/pyshapes/exec", `{"command":"cat /data/greeting; echo $GREETING; touch /data/x 2>/dev/null || echo read-only"}`), 200, "exec")
	if e, _ := exec["execution"].(map[string]any); e["output"] != "hello from the host\nhi\nread-only\n" || e["exit_code"] != float64(0) || e["success"] != true {
		t.Errorf("inside the container: %v", exec)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
		t.Errorf("the container wrote into a read-only volume")
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Each error status the API answers, from the built worker: what was sent
// and what came back. The worker keeps serving after each.
func TestHTTPErrorStatuses(t *testing.T) {
	hw := startHTTPWorker(t, "--socket", service.URI, "--http-max-body", "1k")
	must(t, hw.do(t, "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"taken","command":["sleep","300"]}`), 201, "create")
	defer hw.do(t, "DELETE", "/api/v1/containers/taken?force=true", "")

	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		typ, says                string
	}{
		{"invalid JSON", "POST", "/api/v1/containers", `{"image": "x",`, nil, 400, "BadRequest", "Invalid JSON"},
		{"missing required field", "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest"}`, nil, 400, "BadRequest", `missing required field "name"`},
		{"missing command", "POST", "/api/v1/containers/taken/exec", `{}`, nil, 400, "BadRequest", `missing required field "command"`},
		{"not JSON at all", "POST", "/api/v1/containers/taken/exec", `command=id`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "BadRequest", "Request must be JSON"},
		{"unknown container", "POST", "/api/v1/containers/ghost/start", "", nil, 404, "NotFound", "no such container: ghost"},
		{"unknown container's logs", "GET", "/api/v1/containers/ghost/logs", "", nil, 404, "NotFound", "no such container: ghost"},
		{"unknown route", "GET", "/api/v1/images", "", nil, 404, "NotFound", "no route GET /api/v1/images"},
		{"wrong method", "DELETE", "/api/v1/containers", "", nil, 405, "MethodNotAllowed", "allowed: GET, HEAD, OPTIONS, POST"},
		{"name in use", "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"taken"}`, nil, 409, "Conflict", `"taken" is already in use`},
		{"limit above the ceiling", "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"greedy","memory":"64g"}`, nil, 403, "Forbidden", "above this worker's ceiling of 1g (--max-memory)"},
		{"body over the limit", "POST", "/api/v1/containers/taken/files", `{"dest_path":"/tmp/big","content":"` + strings.Repeat("x", 2048) + `"}`, nil, 413, "TooLarge", "larger than 1024 bytes"},
		{"unknown field", "POST", "/api/v1/containers/taken/users", `{"username":"amy","groups":["wheel"]}`, nil, 400, "BadRequest", `unknown field "groups"`},
		{"bad tail", "GET", "/api/v1/containers/taken/logs?tail=-1", "", nil, 400, "BadRequest", `"tail" must be at least 1`},
	} {
		a := hw.do(t, tc.method, tc.path, tc.body, tc.header...)
		e, _ := a.body["error"].(map[string]any)
		if a.status != tc.status || a.body["success"] != false || e["type"] != tc.typ || e["code"] != float64(tc.status) ||
			!strings.Contains(fmt.Sprint(e["message"]), tc.says) || a.body["timestamp"] == nil {
			t.Errorf("%s: sent %s %s %.80s, got %s; want %d %s saying %q", tc.name, tc.method, tc.path, tc.body, a, tc.status, tc.typ, tc.says)
		}
		if tc.status == 405 && a.header.Get("Allow") != "GET, HEAD, OPTIONS, POST" {
			t.Errorf("%s: Allow %q", tc.name, a.header.Get("Allow"))
		}
	}
	must(t, hw.do(t, "GET", "/api/v1/health", ""), 200, "health after the errors")
}

// A call past --request-timeout answers 408. The container is made by a
// worker with the default timeout, so that its creation cannot time out on
// a busy machine; both workers share the owner, so the second sees it.
func TestHTTPRequestTimeoutIs408(t *testing.T) {
	maker := startHTTPWorker(t, "--socket", service.URI)
	must(t, maker.do(t, "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"slow-box","command":["sleep","300"]}`), 201, "create")
	defer maker.do(t, "DELETE", "/api/v1/containers/slow-box?force=true", "")

	hw := startHTTPWorker(t, "--socket", service.URI, "--request-timeout", "1s")
	a := hw.do(t, "POST", "/api/v1/containers/slow-box/exec", `{"command":["sleep","20"]}`)
	if a.status != 408 || a.errType() != "Timeout" || !strings.Contains(a.raw, "--request-timeout") {
		t.Errorf("an exec of sleep 20 under a 1 s request timeout answered %s; want 408 Timeout naming --request-timeout", a)
	}
}

// A token is required when set: without it or with another 401 (with
// WWW-Authenticate), with it the routes answer.
func TestHTTPBearerToken(t *testing.T) {
	const token = "podman-worker-test-token-0123456789"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hw := startHTTPWorker(t, "--socket", service.URI, "--http-token-file", file)
	for _, tc := range []struct{ header, challenge string }{
		{"", `Bearer realm="podman-worker"`},
		{"Bearer not-the-token-at-all-xxxx", `Bearer realm="podman-worker", error="invalid_token"`},
	} {
		var a answer
		if tc.header == "" {
			a = hw.do(t, "GET", "/api/v1/containers", "")
		} else {
			a = hw.do(t, "GET", "/api/v1/containers", "", "Authorization", tc.header)
		}
		if a.status != 401 || a.errType() != "Unauthorized" || a.header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("Authorization %q: answered %s (WWW-Authenticate %q); want 401 Unauthorized (%q)", tc.header, a, a.header.Get("WWW-Authenticate"), tc.challenge)
		}
	}
	hw.token = token
	must(t, hw.do(t, "GET", "/api/v1/containers", ""), 200, "list with the token")
	must(t, hw.do(t, "GET", "/api/v1/health", ""), 200, "health with the token")
	if strings.Contains(hw.stderr.String(), token) {
		t.Errorf("the log holds the token:\n%s", hw.stderr.String())
	}
}

// A listener beyond loopback needs a token: without one the worker does
// not start (exit 2, saying what to do), before it looks for Podman.
func TestHTTPRefusesNonLoopbackWithoutToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", "[::]:8080", ":8080", "192.0.2.1:8080", "worker.example:8080"} {
		var stderr bytes.Buffer
		code := run(context.Background(), process{
			args: []string{"--socket", "unix:///nonexistent/podman.sock", "--http", addr}, getenv: func(string) string { return "" },
			pid: os.Getpid(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
		})
		if code != 2 || !strings.Contains(stderr.String(), "needs a bearer token: give --http-token-file FILE or PODMAN_WORKER_HTTP_TOKEN") {
			t.Errorf("--http %s without a token: exit %d, %q; want 2 and what to do", addr, code, stderr.String())
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{[]string{"--http", "127.0.0.1:8080", "ping"}, nil, "give one or the other"},
		{[]string{"--http-max-body", "1m"}, nil, "--http-max-body applies to the HTTP API"},
		{[]string{"--http", "0.0.0.0:8080"}, map[string]string{"PODMAN_WORKER_HTTP_TOKEN": "short"}, "PODMAN_WORKER_HTTP_TOKEN: the token must be at least 16 characters"},
		{[]string{"--http", "127.0.0.1:8080", "--http-token-file", "/nonexistent/token"}, nil, "--http-token-file / PODMAN_WORKER_HTTP_TOKEN_FILE: open /nonexistent/token"},
		{[]string{"--http", "127.0.0.1:8080", "--http-cors-origins", "app.example"}, nil, `"app.example" is not an origin`},
		{[]string{"--http", "127.0.0.1:8080", "--http-cors-origins", "*"}, nil, "* without a bearer token lets any web page run containers"},
		{[]string{"--http", "127.0.0.1:8080", "--http-cors-origins", "https://app.example, *"}, nil, "* without a bearer token"},
		{[]string{"--http", "127.0.0.1:8080", "--http-max-body", "2g"}, nil, "--http-max-body / PODMAN_WORKER_HTTP_MAX_BODY"},
		{[]string{"--http", "8080"}, nil, `--http / PODMAN_WORKER_HTTP: "8080" must be HOST:PORT`},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), process{
			args: append([]string{"--socket", "unix:///nonexistent/podman.sock"}, tc.args...), getenv: func(k string) string { return tc.env[k] },
			pid: os.Getpid(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
		})
		if code != 2 || !strings.Contains(stderr.String(), tc.says) {
			t.Errorf("%v %v: exit %d, %q; want 2 saying %q", tc.args, tc.env, code, stderr.String(), tc.says)
		}
	}
	// With a token from the environment, a non-loopback address is taken
	// (a port in use then stops it, still with exit 2).
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stderr bytes.Buffer
	code := run(context.Background(), process{
		args:   []string{"--socket", "unix:///nonexistent/podman.sock", "--http", ln.Addr().String()},
		getenv: func(k string) string { return map[string]string{"PODMAN_WORKER_HTTP_TOKEN": "0123456789abcdef0123"}[k] },
		pid:    os.Getpid(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
	})
	if code != 2 || !strings.Contains(stderr.String(), "podman-worker: --http: listen tcp") || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("--http on a port in use, with a token: exit %d, %q; want 2 naming the listen error", code, stderr.String())
	}
}

// /health answers 503 while Podman is down and 200 once it is back,
// without a restart of the worker.
func TestHTTPHealthIs503WhilePodmanIsDown(t *testing.T) {
	svc := privateService(t)
	hw := startHTTPWorker(t, "--socket", svc.URI)
	if h := must(t, hw.do(t, "GET", "/api/v1/health", ""), 200, "health with Podman up")["health"].(map[string]any); h["status"] != "ok" {
		t.Errorf("health: %v", h)
	}
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	a := hw.do(t, "GET", "/api/v1/health", "")
	h, _ := a.body["health"].(map[string]any)
	if a.status != 503 || a.errType() != "Unavailable" || !strings.Contains(a.raw, svc.Socket) || h["status"] != "degraded" {
		t.Errorf("health with Podman killed: %s; want 503 Unavailable naming the socket, with the health details", a)
	}
	if a := hw.do(t, "GET", "/api/v1/containers", ""); a.status != 503 || a.errType() != "Unavailable" {
		t.Errorf("list with Podman killed: %s; want 503 Unavailable", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	must(t, hw.do(t, "GET", "/api/v1/health", ""), 200, "health once Podman is back")
}

// A client that sends its headers one byte a second is cut off by the
// header timeout, and the worker answers others meanwhile.
func TestHTTPSlowClientIsCutOff(t *testing.T) {
	hw := startHTTPWorker(t, "--socket", service.URI, "--http-header-timeout", "2s")
	conn, err := net.Dial("tcp", hw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	request := "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: one-byte-a-second\r\n\r\n"
	var sent atomic.Int64
	stopWriting := make(chan struct{})
	defer close(stopWriting)
	go func() {
		for i := range len(request) {
			if _, err := conn.Write([]byte{request[i]}); err != nil {
				return
			}
			sent.Add(1)
			select {
			case <-stopWriting:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	// Others are served while the slow client trickles.
	must(t, hw.do(t, "GET", "/api/v1/health", ""), 200, "health while a slow client sends its headers")
	must(t, hw.do(t, "GET", "/api/v1/containers", ""), 200, "list while a slow client sends its headers")

	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	data, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the slow client was not cut off within a minute (sent %d of %d bytes)", sent.Load(), len(request))
	}
	// net/http closes the connection, after a plain "400 Bad Request" when
	// part of the request line had arrived: never an answer to the request.
	if strings.Contains(string(data), "200 OK") || sent.Load() >= int64(len(request)) {
		t.Errorf("the slow client got %q after sending %d of %d bytes; want the connection closed before its headers were complete", data, sent.Load(), len(request))
	}
	must(t, hw.do(t, "GET", "/api/v1/health", ""), 200, "health after the slow client was cut off")
}

// 200 requests at once, of four kinds: each is answered, with its own
// answer, and the worker's metrics count every one.
func TestHTTPConcurrentRequests(t *testing.T) {
	hw := startHTTPWorker(t, "--socket", service.URI, "--request-timeout", "2m")
	must(t, hw.do(t, "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"busy","command":["/bin/sh","-c","echo up; exec sleep 600"]}`), 201, "create")
	defer hw.do(t, "DELETE", "/api/v1/containers/busy?force=true", "")
	before := metricsTotal(t, hw)

	const n = 200
	hw.client.Transport = &http.Transport{MaxIdleConnsPerHost: n}
	var wg sync.WaitGroup
	failures := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var method, path, body, want string
			switch i % 4 {
			case 0:
				method, path, body = "POST", "/api/v1/containers/busy/exec", fmt.Sprintf(`{"command":["echo","request-%d"]}`, i)
				want = fmt.Sprintf(`"output":"request-%d\n"`, i)
			case 1:
				method, path, want = "GET", "/api/v1/containers", `"name":"busy"`
			case 2:
				method, path, want = "GET", "/api/v1/health", `"status":"ok"`
			case 3:
				method, path, want = "GET", "/api/v1/containers/busy/logs?tail=1", `"logs":"up\n"`
			}
			req, _ := http.NewRequest(method, hw.url+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hw.client.Do(req)
			if err != nil {
				failures <- fmt.Sprintf("%d %s %s: %v", i, method, path, err)
				return
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(data), want) {
				failures <- fmt.Sprintf("%d %s %s: %d %s (want %s)", i, method, path, resp.StatusCode, data, want)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	// The metrics call that read "before" is counted too.
	if after := metricsTotal(t, hw); after-before != n+1 {
		t.Errorf("requests_total went from %d to %d; want %d more", before, after, n+1)
	}
}

func metricsTotal(t *testing.T, hw *httpWorker) int {
	t.Helper()
	m, _ := must(t, hw.do(t, "GET", "/api/v1/metrics", ""), 200, "metrics")["metrics"].(map[string]any)
	total, ok := m["requests_total"].(float64)
	if !ok {
		t.Fatalf("metrics without requests_total: %v", m)
	}
	return int(total)
}

// SIGTERM with requests in flight: each is answered, the worker exits 0,
// and the service holds only what the client made and did not remove
// (a created container outlives the worker by design, as it outlived the
// Flask service).
func TestHTTPSIGTERMAnswersRequestsInFlight(t *testing.T) {
	svc := privateService(t)
	hw := startHTTPWorker(t, "--socket", svc.URI, "--shutdown-grace", "1m")
	must(t, hw.do(t, "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"kept","command":["sleep","600"]}`), 201, "create")

	const n = 3
	answers := make(chan answer, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest("POST", hw.url+"/api/v1/containers/kept/exec", strings.NewReader(fmt.Sprintf(`{"command":"sleep 2; echo done-%d"}`, i)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hw.client.Do(req)
			if err != nil {
				answers <- answer{raw: err.Error()}
				return
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{status: resp.StatusCode, raw: string(data)}
		}()
	}
	waitExecSessions(t, svc.URI, "kept", n)
	if err := hw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range n {
		a := <-answers
		if a.status != 200 || !strings.Contains(a.raw, `"exit_code":0`) {
			t.Errorf("a request in flight at SIGTERM answered %s; want 200 with the command's output", a)
		}
		got = append(got, a.raw)
	}
	for i := range n {
		if !strings.Contains(strings.Join(got, ""), fmt.Sprintf(`"output":"done-%d\n"`, i)) {
			t.Errorf("no answer holds done-%d: %v", i, got)
		}
	}
	if code := hw.wait(t, time.Minute, false); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	log := hw.stderr.String()
	for _, want := range []string{`"signal":"terminated signal received"`, `"message":"stopped; every request was answered"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
	var left []string
	for _, c := range onService(t, svc.URI) {
		left = append(left, c.Names...)
	}
	if !slices.Equal(left, []string{"kept"}) {
		t.Errorf("after the worker exited the service holds %v; want only the container the client created", left)
	}
}

// A request still running when the grace period ends is cancelled and
// answered 503, and the worker still exits 0.
func TestHTTPSIGTERMCancelsAfterGrace(t *testing.T) {
	svc := privateService(t)
	hw := startHTTPWorker(t, "--socket", svc.URI, "--shutdown-grace", "1s")
	must(t, hw.do(t, "POST", "/api/v1/containers", `{"image":"localhost/busybox:latest","name":"endless","command":["sleep","600"]}`), 201, "create")
	answers := make(chan answer, 1)
	go func() {
		resp, err := http.Post(hw.url+"/api/v1/containers/endless/exec", "application/json", strings.NewReader(`{"command":["sleep","60"]}`))
		if err != nil {
			answers <- answer{raw: err.Error()}
			return
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers <- answer{status: resp.StatusCode, raw: string(data)}
	}()
	waitExecSessions(t, svc.URI, "endless", 1)
	if err := hw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answers:
		if a.status != 503 || !strings.Contains(a.raw, `"type":"Cancelled"`) {
			t.Errorf("an exec of sleep 60 past a 1 s grace answered %s; want 503 Cancelled", a)
		}
	case <-time.After(time.Minute):
		t.Fatal("no answer within a minute of SIGTERM")
	}
	if code := hw.wait(t, time.Minute, false); code != 0 {
		t.Errorf("exit %d after the grace period, want 0", code)
	}
}

// waitExecSessions waits until Podman reports n exec sessions in the
// container: the requests are then surely in the worker's hands.
func waitExecSessions(t *testing.T, uri, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := bindings.NewConnection(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := containers.Inspect(conn, name, nil)
		if err == nil && len(data.ExecIDs) >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("Podman never showed %d exec sessions in %s (%v)", n, name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The worker's own files are never mounted, whatever --mount-roots
// covers: its token file and the containers.conf it points Podman at were
// mountable from a root that held them.
func TestTheWorkersOwnFilesAreNeverMounted(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	conf := filepath.Join(dir, "containers.conf")
	for _, f := range []string{token, conf} {
		if err := os.WriteFile(f, []byte("0123456789abcdef0123"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"CONTAINERS_CONF": conf}
	cfg, err := parseConfig([]string{"--socket", "/srv/pm/podman.sock", "--http", "127.0.0.1:0", "--http-token-file", token, "--mount-roots", dir},
		func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{token, conf, dir} {
		if _, err := cfg.policy.BindSource("volumes", src); err == nil || !strings.Contains(err.Error(), "never exposes") {
			t.Errorf("--mount-roots %s, sent %s: %v; want it refused as never exposed", dir, src, err)
		}
	}
}
