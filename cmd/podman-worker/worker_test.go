package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podman-worker/podman-worker/internal/testbuf"
	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// The first thing a backend engineer does: pipe one ping in.
func TestPingThroughAPipeExitsZero(t *testing.T) {
	cmd := exec.Command(workerBin, "--socket", service.Socket)
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit: %v\nstderr:\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"jsonrpc":"2.0","method":"worker.ready","params":{"version":`) ||
		lines[1] != `{"jsonrpc":"2.0","id":1,"result":"Pong"}` {
		t.Errorf("stdout = %q, want worker.ready then Pong", stdout.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr carries a line that is not a JSON log line: %q", line)
		}
	}
}

// Build output must reach the client as it happens, not with the reply: a
// step that sleeps 2 s separates the first line from the response.
func TestBuildProgressStreamsAsItHappens(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--build-roots", testdataBuild())
	params := fmt.Sprintf(`{"context":%q,"tag":"progress-timing","no_cache":true}`, filepath.Join(repoRoot, "testdata", "build", "slow"))
	w.send(`{"jsonrpc":"2.0","id":"t1","method":"build","params":` + params + `}`)
	var firstLine time.Time
	for {
		line, ok := w.next(2 * time.Minute)
		if !ok {
			t.Fatal("the worker closed its output during the build")
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				RequestID json.RawMessage `json:"request_id"`
				Line      string          `json:"line"`
			} `json:"params"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if m.Method == "build.progress" {
			if string(m.Params.RequestID) != `"t1"` {
				t.Errorf("progress for request_id %s, want \"t1\"", m.Params.RequestID)
			}
			if m.Params.Line == "first line" {
				firstLine = time.Now()
			}
			continue
		}
		if m.Error != nil {
			t.Fatalf("build failed: %s", line)
		}
		if firstLine.IsZero() {
			t.Fatal("the response came before the progress line \"first line\"")
		}
		if gap := time.Since(firstLine); gap < time.Second {
			t.Errorf("\"first line\" arrived only %v before the response; want it streamed as it happens (>1 s before)", gap)
		}
		return
	}
}

// Many calls at once: each id is answered exactly once, with its own answer.
func TestConcurrentCallsAreEachAnsweredOnce(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--max-workers", "4")
	const n = 300
	var in strings.Builder
	for i := 0; i < n; i++ {
		method := "ping"
		if i%3 == 0 {
			method = "version"
		}
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":%q}`+"\n", i, method)
	}
	w.send(strings.TrimSuffix(in.String(), "\n"))
	seen := map[int]bool{}
	for len(seen) < n {
		line, ok := w.next(time.Minute)
		if !ok {
			t.Fatalf("output closed after %d of %d replies", len(seen), n)
		}
		var r struct {
			ID     int    `json:"id"`
			Result string `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad reply %q: %v", line, err)
		}
		if seen[r.ID] {
			t.Fatalf("id %d answered twice", r.ID)
		}
		seen[r.ID] = true
		if want := "Pong"; r.ID%3 != 0 && r.Result != want {
			t.Errorf("id %d (ping) got %q", r.ID, r.Result)
		}
		if r.ID%3 == 0 && (r.Result == "Pong" || r.Result == "") {
			t.Errorf("id %d (version) got %q: replies mixed up", r.ID, r.Result)
		}
	}
	if code := w.closeAndWait(time.Minute); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Podman going away and coming back must not need a worker restart.
func TestRecoversWhenPodmanComesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI)

	if r, _ := w.call("1", "ping", ""); r["result"] != "Pong" {
		t.Fatalf("before the restart: %v", r)
	}
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"2", "3"} {
		r, _ := w.call(id, "ping", "")
		e, _ := r["error"].(map[string]any)
		data, _ := e["data"].(map[string]any)
		if data["type"] != "Unavailable" || data["status"] != float64(503) || !strings.Contains(fmt.Sprint(e["message"]), svc.Socket) {
			t.Fatalf("ping %d with podman killed: got %v, want Unavailable/503 naming the socket", i+1, r)
		}
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.call("4", "ping", ""); r["result"] != "Pong" {
		t.Fatalf("after podman came back: %v, want Pong without restarting the worker", r)
	}
	if r, _ := w.call("5", "version", ""); r["error"] != nil {
		t.Fatalf("version after the restart: %v", r)
	}
}

// stdoutHelperEnv makes the test binary the misbehaving child of
// TestStdoutCarriesOnlyTheProtocol; TestMain then builds and starts nothing.
const stdoutHelperEnv = "PODMAN_WORKER_STDOUT_HELPER"

// Anything a dependency prints to os.Stdout or descriptor 1 must land on
// stderr: the protocol has a descriptor of its own. The test re-runs this
// test binary as a child that calls reserveStdout and then misbehaves.
func TestStdoutCarriesOnlyTheProtocol(t *testing.T) {
	if os.Getenv(stdoutHelperEnv) == "1" {
		protocol, err := reserveStdout()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println("printed to os.Stdout")
		os.NewFile(1, "fd1").WriteString("written to fd 1\n")
		c := exec.Command("echo", "from a child with os.Stdout")
		c.Stdout = os.Stdout
		c.Run()
		protocol.WriteString(`{"jsonrpc":"2.0","id":1,"result":"Pong"}` + "\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestStdoutCarriesOnlyTheProtocol$")
	cmd.Env = append(os.Environ(), stdoutHelperEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), `{"jsonrpc":"2.0","id":1,"result":"Pong"}`+"\n"; got != want {
		t.Errorf("stdout = %q, want only the protocol line %q", got, want)
	}
	for _, s := range []string{"printed to os.Stdout", "written to fd 1", "from a child with os.Stdout"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("%q should have gone to stderr; stderr = %q", s, stderr.String())
		}
	}
}

func TestConfiguration(t *testing.T) {
	tests := []struct {
		args     []string
		env      []string
		wantCode int
		wantOut  string // in stdout or stderr
	}{
		{[]string{"--version"}, nil, 0, "podman-worker "},
		{[]string{"--help"}, nil, 0, "  --max-workers N\n"},
		{[]string{"-h"}, nil, 0, "else the worker\nstarts a Podman service of its own"},
		{[]string{"--max-workers", "0"}, nil, 2, "--max-workers / MAX_WORKERS"},
		{nil, []string{"MAX_WORKERS=lots"}, 2, "--max-workers / MAX_WORKERS: \"lots\""},
		{[]string{"--max-line-bytes", "12q"}, nil, 2, "--max-line-bytes / MAX_LINE_BYTES"},
		{[]string{"--log-level", "loud"}, nil, 2, "--log-level / LOG_LEVEL"},
		{[]string{"--socket", "ftp://x"}, nil, 2, "only unix:// paths, ssh:// hosts and tcp:// addresses"},
		{[]string{"--socket", "ssh://root@h/run/podman/podman.sock"}, nil, 2, `--socket: podman socket "ssh://root@h/run/podman/podman.sock": no identity to log in with: pass --identity FILE`},
		{nil, []string{"CONTAINER_HOST=ssh://root@h"}, 2, "no socket path after the host: write ssh://root@h/run/podman/podman.sock"},
		{[]string{"--socket", "/x.sock", "--connection", "b=ssh://h/p.sock,/nonexistent/key"}, nil, 2, "--connection b: podman socket \"ssh://h/p.sock\": identity /nonexistent/key: open /nonexistent/key: no such file or directory"},
		{[]string{"--connection", "no-uri"}, nil, 2, `invalid value "no-uri" for flag --connection: "no-uri" must be NAME=URI or NAME=URI,IDENTITY`},
		{[]string{"--socket", "/x.sock", "--connection", "default=/y.sock"}, nil, 2, `--connection default=/y.sock: "default" names the --socket connection; choose another name`},
		{nil, []string{"PODMAN_WORKER_CONNECTIONS=a=/x.sock a=/y.sock"}, 2, `PODMAN_WORKER_CONNECTIONS: "a=/y.sock": a connection is already named a`},
		{[]string{"extra"}, nil, 2, "podman-worker: error: argument command: invalid choice: 'extra'"},
		{[]string{"--max-memory", "1m"}, nil, 2, "--max-memory / MAX_MEMORY"},
		{nil, []string{"MAX_CPUS=-1"}, 2, "--max-cpus / MAX_CPUS"},
		{[]string{"--max-timeout", "5"}, nil, 2, "--max-timeout / MAX_TIMEOUT"},
		{[]string{"--max-pids", "0"}, nil, 2, "--max-pids / MAX_PIDS"},
		{[]string{"--network-modes", "none,wifi"}, nil, 2, "--network-modes / NETWORK_MODES"},
		{[]string{"--max-output-bytes", "2g"}, nil, 2, "--max-output-bytes / MAX_OUTPUT_BYTES"},
		{[]string{"--max-memory-swap", "512m"}, nil, 2, "--max-memory-swap / MAX_MEMORY_SWAP: \"512m\" must be a size of at least --max-memory (1g)"},
		{nil, []string{"ALLOW_CAPS=ALL"}, 2, "--allow-caps / ALLOW_CAPS"},
		{[]string{"--allow-caps", "SYS_WIZARD"}, nil, 2, "--allow-caps / ALLOW_CAPS"},
		{[]string{"--port-addresses", "localhost"}, nil, 2, "--port-addresses / PORT_ADDRESSES"},
		{[]string{"--mount-roots", "relative/dir"}, nil, 2, "--mount-roots / MOUNT_ROOTS"},
		{nil, []string{"MOUNT_ROOTS=/no/such/dir"}, 2, "--mount-roots / MOUNT_ROOTS"},
		{[]string{"--build-roots", "/etc/hostname"}, nil, 2, "--build-roots / BUILD_ROOTS"},
		{[]string{"--max-build-context", "lots"}, nil, 2, "--max-build-context / MAX_BUILD_CONTEXT"},
		{[]string{"--max-build-timeout", "30"}, nil, 2, "--max-build-timeout / MAX_BUILD_TIMEOUT"},
		{[]string{"--max-log-bytes", "1k"}, nil, 2, "--max-log-bytes / MAX_LOG_BYTES"},
		{nil, []string{"USERNS=keep-id"}, 2, "--userns / USERNS"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.args, tt.env...), " "), func(t *testing.T) {
			cmd := exec.Command(workerBin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			cmd.Stdin = strings.NewReader("")
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tt.wantCode || !strings.Contains(string(out), tt.wantOut) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out, tt.wantCode, tt.wantOut)
			}
		})
	}
}

// The sandbox settings: closed by default, widened by flags or their
// environment variables, and the socket the worker uses never mountable.
func TestSandboxConfiguration(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	cfg, err := parseConfig([]string{"--socket", "/srv/pm/podman.sock"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.policy
	if p.MaxMemorySwap != p.MaxMemory || len(p.AllowCaps) != 0 || !slices.Equal(p.PortAddresses, []string{"127.0.0.1"}) ||
		p.AllowPrivilegedPorts || len(p.MountRoots) != 0 || len(p.BuildRoots) != 0 || p.WritableRoot || p.UserNS != "" ||
		p.AllowSpecialModes || !slices.Equal(p.NetworkModes, []string{"none"}) || p.MaxLogBytes != 10<<20 ||
		p.MaxBuildContext != 256<<20 || p.MaxBuildTimeout != 30*time.Minute {
		t.Errorf("defaults: %+v", p)
	}
	for _, never := range []string{"/", "/proc", "/sys", "/dev", "/run/podman", "/srv/pm/podman.sock", cfg.podmanRoot} {
		if !slices.Contains(p.NeverMount, never) {
			t.Errorf("%s is not in the never-mount list %v", never, p.NeverMount)
		}
	}
	env := map[string]string{
		"MAX_MEMORY_SWAP": "2g", "ALLOW_CAPS": "net_bind_service", "PORT_ADDRESSES": "0.0.0.0", "ALLOW_PRIVILEGED_PORTS": "true",
		"MOUNT_ROOTS": dir, "BUILD_ROOTS": dir, "WRITABLE_ROOT": "1", "USERNS": "auto", "ALLOW_SPECIAL_MODES": "true",
		"NETWORK_MODES": "bridge", "MAX_LOG_BYTES": "1m", "MAX_BUILD_CONTEXT": "1g", "MAX_BUILD_TIMEOUT": "1h",
	}
	cfg, err = parseConfig(nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	p = cfg.policy
	if p.MaxMemorySwap != 2<<30 || !slices.Equal(p.AllowCaps, []string{"NET_BIND_SERVICE"}) || !slices.Equal(p.PortAddresses, []string{"0.0.0.0"}) ||
		!p.AllowPrivilegedPorts || !slices.Equal(p.MountRoots, []string{dir}) || !slices.Equal(p.BuildRoots, []string{dir}) || !p.WritableRoot ||
		p.UserNS != "auto" || !p.AllowSpecialModes || !slices.Equal(p.NetworkModes, []string{"none", "bridge"}) || p.MaxLogBytes != 1<<20 ||
		p.MaxBuildContext != 1<<30 || p.MaxBuildTimeout != time.Hour {
		t.Errorf("from the environment %v: %+v", env, p)
	}
	// A flag wins over its variable.
	cfg, err = parseConfig([]string{"--writable-root=false", "--userns", "host"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil || cfg.policy.WritableRoot || cfg.policy.UserNS != "" {
		t.Errorf("flags over the environment: %+v, %v", cfg.policy, err)
	}
}

// The socket comes from --socket, else PODMAN_SOCKET_PATH, else
// CONTAINER_HOST, else the seed's default.
func TestSocketPrecedence(t *testing.T) {
	tests := []struct {
		flag string
		env  map[string]string
		want string
	}{
		{"unix:///a.sock", map[string]string{"PODMAN_SOCKET_PATH": "/b.sock", "CONTAINER_HOST": "unix:///c.sock"}, "unix:///a.sock"},
		{"", map[string]string{"PODMAN_SOCKET_PATH": "/b.sock", "CONTAINER_HOST": "unix:///c.sock"}, "/b.sock"},
		{"", map[string]string{"CONTAINER_HOST": "unix:///c.sock"}, "unix:///c.sock"},
		{"", nil, DefaultSocket},
	}
	for _, tt := range tests {
		var args []string
		if tt.flag != "" {
			args = []string{"--socket", tt.flag}
		}
		cfg, err := parseConfig(args, func(k string) string { return tt.env[k] }, &bytes.Buffer{})
		if err != nil || cfg.socket != tt.want {
			t.Errorf("flag %q env %v: socket %q (%v), want %q", tt.flag, tt.env, cfg.socket, err, tt.want)
		}
	}
}

// The first line is worker.ready, with the worker's and Podman's versions.
func TestReadyComesFirst(t *testing.T) {
	for _, tt := range []struct {
		socket    string
		connected bool
	}{{service.URI, true}, {"unix:///nonexistent/podman.sock", false}} {
		w := startWorker(t, "--socket", tt.socket)
		line := w.ready
		var n struct {
			Method string `json:"method"`
			Params struct {
				Version string `json:"version"`
				PID     int    `json:"pid"`
				Podman  struct {
					Connected bool   `json:"connected"`
					Socket    string `json:"socket"`
					Version   string `json:"version"`
				} `json:"podman"`
			} `json:"params"`
		}
		if err := json.Unmarshal([]byte(line), &n); err != nil || n.Method != "worker.ready" || n.Params.PID != w.cmd.Process.Pid ||
			n.Params.Podman.Connected != tt.connected || n.Params.Podman.Socket != tt.socket || (tt.connected && n.Params.Podman.Version == "") {
			t.Errorf("socket %s: first line %s", tt.socket, line)
		}
		r, _ := w.call("1", "health", "")
		res := result(t, r)
		if want := map[bool]string{true: "ok", false: "degraded"}[tt.connected]; res["status"] != want {
			t.Errorf("socket %s: health %v, want %s", tt.socket, res, want)
		}
	}
}

// The worker reads a pipe on stdin in non-blocking mode, a flag of the open
// file that its parent shares, so it puts the blocking mode back at exit.
func TestStdinBlockingModeRestoredAtExit(t *testing.T) {
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(workerBin, "--socket", service.URI)
	cmd.Stdin = r // exec hands over the descriptor in blocking mode
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(wr, `{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n")
	wr.Close()
	if err := cmd.Wait(); err != nil || !strings.Contains(stdout.String(), `"result":"Pong"`) {
		t.Fatalf("exit %v, stdout %s", err, stdout.String())
	}
	raw, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	raw.Control(func(fd uintptr) { flags, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if flags&unix.O_NONBLOCK != 0 {
		t.Errorf("the worker left its stdin pipe in non-blocking mode (flags %#o)", flags)
	}
}

// The worker runs on one processor unless GOMAXPROCS says otherwise.
func TestProcsDefaultToOneUnlessGOMAXPROCSIsSet(t *testing.T) {
	for _, tt := range []struct{ env, want string }{{"", "1"}, {"3", "3"}} {
		t.Setenv("GOMAXPROCS", tt.env) // inherited by the worker; "" counts as unset
		w := startWorker(t, "--socket", service.URI)
		r, _ := w.call("1", "metrics", "")
		if got := fmt.Sprint(result(t, r)["procs"]); got != tt.want {
			t.Errorf("GOMAXPROCS=%q: metrics procs %s, want %s", tt.env, got, tt.want)
		}
	}
}

// After 1,000 mixed calls the worker's goroutines and descriptors return
// to their idle level: nothing leaks per call.
func TestNoLeaksAfterManyCalls(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--max-workers", "8")
	idle := func(id string) (goroutines, fds float64) {
		r, _ := w.call(id, "metrics", "")
		m := result(t, r)
		return m["goroutines"].(float64), m["open_fds"].(float64)
	}
	w.call(`"warm"`, "run", runParams("", "true"))
	time.Sleep(500 * time.Millisecond) // the warm-up's removal
	g0, f0 := idle(`"before"`)
	methods := []string{
		`"method":"ping"`, `"method":"version"`, `"method":"images"`, `"method":"ps","params":{"all":true}`,
		`"method":"exists","params":{"image":"nope"}`, `"method":"inspect","params":{"image":"nope"}`, `"method":"nope"`,
	}
	const n = 1000
	for i := 0; i < n; i++ {
		m := methods[i%len(methods)]
		if i%50 == 0 {
			m = `"method":"run","params":` + runParams("", "echo", "x")
		}
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,%s}`, i, m))
	}
	for got := 0; got < n; {
		if _, ok := w.next(2 * time.Minute); !ok {
			t.Fatal("output closed")
		}
		got++
	}
	var g1, f1 float64
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		g1, f1 = idle(fmt.Sprintf(`"after-%d"`, i))
		if (g1 <= g0 && f1 <= f0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("idle: %v goroutines, %v fds; after %d mixed calls: %v goroutines, %v fds", g0, f0, n, g1, f1)
	if g1 > g0 || f1 > f0 {
		t.Errorf("after %d calls: %v goroutines and %v fds, idle was %v and %v", n, g1, f1, g0, f0)
	}
	r, _ := w.call(`"final"`, "metrics", "")
	m := result(t, r)
	if m["owned_containers"] != float64(0) || m["requests_total"].(float64) < n {
		t.Errorf("metrics after the burst: %v", m)
	}
}

// With no socket configured and none answering at the default locations,
// the worker starts its own Podman service, serves through it, and stops
// it when it exits.
func TestEmbeddedServiceWhenNoSocketAnswers(t *testing.T) {
	if answers(DefaultSocket) {
		t.Skipf("a Podman service answers at %s on this machine, so the worker would rightly use it", DefaultSocket)
	}
	root, err := os.MkdirTemp("/tmp", "pw-embed-") // short: the socket path must stay under 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := podmantest.RemoveDir(root); err != nil {
			t.Errorf("removing the embedded service's root: %v", err)
		}
	}()
	// The scratch folder of a worker that died without stopping its service
	// (no process can have a pid above the kernel's maximum, 2^22).
	stale := filepath.Join(root, "scratch-4194305")
	if err := os.MkdirAll(filepath.Join(stale, "buildah123"), 0o700); err != nil {
		t.Fatal(err)
	}
	// No --podman-conf: the worker writes the settings its service needs on
	// this host, and a function runs (an image imported by hand into its
	// store, shared by --shared-images).
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	tree, img := t.TempDir(), filepath.Join(root, "img.tar")
	if err := os.Mkdir(filepath.Join(tree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", busybox, filepath.Join(tree, "bin", "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("tar", "-C", tree, "-cf", img, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	cmd := exec.Command(workerBin, "--podman-root", root, "--shared-images", "localhost/embedded:1")
	cmd.Env = append(withoutEnv("PODMAN_SOCKET_PATH", "CONTAINER_HOST", "CONTAINERS_CONF"), "XDG_RUNTIME_DIR="+t.TempDir())
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	go func() {
		defer pw.Close()
		fmt.Fprintf(pw, `{"jsonrpc":"2.0","id":1,"method":"version"}`+"\n")
		// Import the image into the embedded store once its socket is up.
		var sock string
		for i := 0; i < 600 && sock == ""; i++ {
			if socks, _ := filepath.Glob(filepath.Join(root, "podman-*.sock")); len(socks) > 0 && answers(socks[0]) {
				sock = socks[0]
			} else {
				time.Sleep(100 * time.Millisecond)
			}
		}
		imp := exec.Command("podman", "--url", "unix://"+sock, "import", "--change", `CMD ["/bin/busybox","echo","ran"]`, img, "localhost/embedded:1")
		if out, err := imp.CombinedOutput(); err != nil {
			t.Errorf("podman import into the embedded service: %v %s", err, out)
		}
		fmt.Fprintf(pw, `{"jsonrpc":"2.0","id":2,"method":"run","params":{"image":"localhost/embedded:1","command":["/bin/busybox","echo","ran"],"memory":"20m","cpus":0.5,"timeout":10}}`+"\n")
		fmt.Fprintf(pw, `{"jsonrpc":"2.0","id":3,"method":"ping"}`+"\n")
	}()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"connected":true`) || !strings.Contains(lines[0], `"socket":"unix://`+root+"/") ||
		!strings.Contains(lines[1], `"id":1,"result":"`) || !strings.Contains(stdout.String(), `"stdout":"ran\n"`) {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if conf, err := os.ReadFile(filepath.Join(root, "containers.conf")); err != nil || !strings.Contains(string(conf), "default_ulimits") {
		t.Errorf("the embedded service's containers.conf: %q %v", conf, err)
	}
	if !strings.Contains(stderr.String(), "stopped the embedded podman service") {
		t.Errorf("the embedded service was not stopped:\n%s", stderr.String())
	}
	if pids := podmantest.ProcessesMentioning(root); len(pids) > 0 {
		out, _ := exec.Command("ps", "-o", "pid,args", "-p", strings.Trim(strings.Join(strings.Fields(fmt.Sprint(pids)), ","), "[]")).CombinedOutput()
		t.Errorf("processes still running for %s: %v\n%s", root, pids, out)
	}
	// Its storage's overlay is not left mounted (the root is removed
	// without detaching anything first).
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), " "+root+"/") {
		t.Errorf("mounts left under %s after the worker exited", root)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "scratch-*")); len(left) > 0 {
		t.Errorf("scratch folders left (the stale one and this worker's must be gone): %v", left)
	}
}

func withoutEnv(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// A socket-activated Podman (podman.socket) exits after its idle timeout
// and is started again by the next connection. Calls after it exited for
// idleness, reads and writes alike, must succeed without a worker restart.
func TestCallsAfterIdleSocketActivatedService(t *testing.T) {
	svc, err := podmantest.StartActivated("2")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := podmantest.EnsureBusybox(ctx, svc.URI); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--socket", svc.URI)
	result(t, mustCall(w, `"before"`, "run", runParams("", "echo", "before")))

	// The service exits by its idle timeout (2 s): the calls below find it
	// gone and must start it again.
	if err := svc.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	starts := svc.Starts()
	for i, c := range []struct{ method, params string }{
		{"ping", ""}, {"images", ""}, {"run", runParams("", "echo", "after")},
		{"create", `{"image":"localhost/busybox:latest","name":"after-idle","command":["sleep","60"]}`},
		{"rm", `{"container":"after-idle","force":true}`},
	} {
		r, _ := w.call(fmt.Sprint(i), c.method, c.params)
		if r["error"] != nil {
			t.Errorf("%s after the service exited for idleness: %v", c.method, r["error"])
		}
	}
	if svc.Starts() <= starts {
		t.Errorf("the calls did not go through a newly started service (%d starts)", svc.Starts())
	}
}

// Regression: a relative --podman-root resolved twice, inside itself.
func TestPodmanRootIsMadeAbsolute(t *testing.T) {
	cfg, err := parseConfig([]string{"--podman-root", "rel/root"}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil || !filepath.IsAbs(cfg.podmanRoot) || !strings.HasSuffix(cfg.podmanRoot, "/rel/root") {
		t.Errorf("got %q, %v", cfg.podmanRoot, err)
	}
}

// run is the whole program and runs in-process: its environment, pid and
// streams come from the caller, so two runs in one process do not share
// settings, and nothing reaches the test binary's own stdout.
func TestRunInProcess(t *testing.T) {
	env := map[string]string{"MAX_WORKERS": "3"}
	// stderr is written from several goroutines (the log), as a process's
	// descriptor would be: a plain bytes.Buffer is a data race.
	var stdout bytes.Buffer
	stderr := &testbuf.Buffer{}
	code := run(context.Background(), process{
		args:   []string{"--socket", service.URI},
		getenv: func(k string) string { return env[k] },
		pid:    4242,
		stdin:  strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"metrics"}` + "\n"),
		stdout: &stdout, stderr: stderr,
	})
	if code != 0 {
		t.Fatalf("run answered %d; stderr:\n%s", code, stderr.String())
	}
	// Calls run concurrently: the two replies may come in either order.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	slices.Sort(lines[1:])
	if len(lines) != 3 || !strings.Contains(lines[0], `"pid":4242`) || lines[1] != `{"jsonrpc":"2.0","id":1,"result":"Pong"}` ||
		!strings.Contains(lines[2], `"workers":{"max":3,`) {
		t.Errorf("sent ping and metrics with MAX_WORKERS=3 and pid 4242; got:\n%s", stdout.String())
	}

	// A second run in the same process takes only its own settings.
	stdout.Reset()
	stderr = &testbuf.Buffer{}
	code = run(context.Background(), process{
		args:   []string{"--max-workers", "x"},
		getenv: func(string) string { return "" },
		stdin:  strings.NewReader(""), stdout: &stdout, stderr: stderr,
	})
	if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "--max-workers / MAX_WORKERS: \"x\"") {
		t.Errorf("--max-workers x: exit %d, stdout %q, stderr %q; want 2 and the setting named on stderr", code, stdout.String(), stderr.String())
	}
}

// A socket that accepts connections and never answers: no call waits for
// another's connection attempt, each waits at most until its own deadline
// (here the request timeout of 1 s), and health says degraded instead of
// hanging.
func TestSocketThatNeverAnswers(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "silent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn // accepted, never answered
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	w := startWorkerRaw(t, "--socket", "unix://"+sock, "--request-timeout", "1s", "--max-workers", "8")
	if line, ok := w.next(time.Minute); !ok || !strings.Contains(line, `"connected":false`) {
		t.Fatalf("worker.ready with a silent socket: %q", line)
	}
	start := time.Now()
	for i := range 8 {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i))
	}
	w.send(`{"jsonrpc":"2.0","id":"h","method":"health"}`)
	var last time.Duration
	for range 9 {
		line, ok := w.next(time.Minute)
		if !ok {
			t.Fatal("output closed")
		}
		last = time.Since(start)
		if strings.Contains(line, `"id":"h"`) {
			if !strings.Contains(line, `"status":"degraded"`) {
				t.Errorf("health with a silent socket: %s", line)
			}
			continue
		}
		if !strings.Contains(line, `"type":"Timeout"`) && !strings.Contains(line, `"type":"Unavailable"`) {
			t.Errorf("ping with a silent socket: %s; want Timeout or Unavailable", line)
		}
	}
	// Eight calls behind one connection attempt that never ends: if each
	// waited for the one before it, the last would take 8 s or more.
	if last > 5*time.Second {
		t.Errorf("8 pings and a health with 1 s each took %v to be answered; calls waited for each other", last)
	}
}
