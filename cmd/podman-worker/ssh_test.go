package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// sshHost is a Podman "host" reached over SSH without leaving the machine:
// a private Podman service and a private sshd in front of it.
type sshHost struct {
	svc  *podmantest.Service
	sshd *podmantest.SSHD
}

func startSSHHost(t *testing.T) *sshHost {
	t.Helper()
	return &sshHost{svc: privateService(t), sshd: podmantest.SSHDFor(t)}
}

// uri is the host's Podman socket as an ssh:// URI.
func (h *sshHost) uri() string { return h.sshd.URI(h.svc.Socket) }

// knownHosts writes one known_hosts file that lists every host's key.
func knownHosts(t *testing.T, hosts ...*sshHost) string {
	t.Helper()
	var all []byte
	for _, h := range hosts {
		b, err := os.ReadFile(h.sshd.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readyParams decodes the worker.ready line.
func readyOf(t *testing.T, line string) (def string, conns map[string]map[string]any) {
	t.Helper()
	var n struct {
		Params struct {
			DefaultConnection string                    `json:"default_connection"`
			Connections       map[string]map[string]any `json:"connections"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(line), &n); err != nil {
		t.Fatalf("worker.ready is not JSON: %q", line)
	}
	return n.Params.DefaultConnection, n.Params.Connections
}

// Over SSH a worker does all it does over a unix socket: ping, a run whose
// limits are seen from inside, a file uploaded into a container, and a
// build whose progress streams before its reply.
func TestSSHRunsFunctions(t *testing.T) {
	h := startSSHHost(t)
	w := startWorker(t, "--socket", h.uri(), "--identity", h.sshd.Identity, "--known-hosts", h.sshd.KnownHosts, "--build-roots", repoRoot+"/testdata/build")
	if def, conns := readyOf(t, w.ready); def != "default" || conns["default"]["connected"] != true || conns["default"]["socket"] != h.uri() {
		t.Fatalf("worker.ready: %s", w.ready)
	}
	if r, _ := w.call("1", "ping", ""); r["result"] != "Pong" {
		t.Fatalf("ping over ssh: %v", r)
	}

	r, _ := w.call("2", "run", runParams(`"memory":"20m","cpus":0.5`, "/bin/sh", "-c",
		`cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us`))
	if got := fmt.Sprint(result(t, r)["stdout"]); got != "20971520\n50000\n" {
		t.Errorf("a run over ssh with 20m and 0.5 cpus saw %q from inside, want 20971520 and 50000", got)
	}

	// A run's input reaches the function over SSH too, and its stdin is
	// closed at the end of it (cat ends), with the output streamed.
	r, lines := w.call(`"2b"`, "run", runParams(`"input":"through the ssh channel","stream":true`, "cat"))
	if got := fmt.Sprint(result(t, r)["stdout"]); got != "through the ssh channel" || !strings.Contains(strings.Join(lines, "\n"), `"method":"run.output"`) {
		t.Errorf("a run over ssh with input and stream: stdout %q, notifications %q", got, lines)
	}

	result(t, mustCall(w, "3", "create", `{"image":"localhost/busybox:latest","name":"ssh-files","command":["sleep","600"]}`))
	content := "over ssh \u00e9\n" + strings.Repeat("x", 100000)
	r, _ = w.call("4", "add_file", fmt.Sprintf(`{"name":"ssh-files","dest_path":"/tmp/f.txt","content":%q}`, content))
	result(t, r)
	r, _ = w.call("5", "exec", `{"name":"ssh-files","command":["cat","/tmp/f.txt"]}`)
	if got := result(t, r)["output"]; got != content {
		t.Errorf("add_file over ssh then cat: %d bytes back, want the %d sent", len(fmt.Sprint(got)), len(content))
	}
	result(t, mustCall(w, "6", "rm", `{"container":"ssh-files","force":true}`))

	r, before := w.call(`"b1"`, "build", fmt.Sprintf(`{"context":%q,"tag":"ssh-build:latest","no_cache":true}`, filepath.Join(repoRoot, "testdata", "build", "hello")))
	result(t, r)
	progress := 0
	for _, line := range before {
		if strings.Contains(line, `"method":"build.progress"`) && strings.Contains(line, `"request_id":"b1"`) {
			progress++
		}
	}
	if progress == 0 || !slices.ContainsFunc(before, func(l string) bool { return strings.Contains(l, "hello from the build") }) {
		t.Errorf("a build over ssh sent %d build.progress lines before its reply, want its output among them: %q", progress, before)
	}
}

// Two hosts as two named connections: calls choose one, each host holds
// only the containers made through it, an unknown name is refused, and
// when one host goes down the other keeps serving (both measured).
func TestSSHNamedConnections(t *testing.T) {
	a, b := startSSHHost(t), startSSHHost(t)
	w := startWorker(t, "--socket", service.URI,
		"--connection", "a="+a.uri()+","+a.sshd.Identity, // its own identity
		"--connection", "b="+b.uri(), "--identity", b.sshd.Identity, // the common one
		"--known-hosts", knownHosts(t, a, b))
	def, conns := readyOf(t, w.ready)
	if def != "default" || len(conns) != 3 || conns["a"]["connected"] != true || conns["b"]["connected"] != true || conns["default"]["connected"] != true {
		t.Fatalf("worker.ready: %s", w.ready)
	}

	// Runs spread across both hosts; they stay (auto_remove false) so
	// that ps can list them.
	for i := 0; i < 6; i++ {
		conn := []string{"a", "b"}[i%2]
		r, _ := w.call(fmt.Sprint(10+i), "run", runParams(fmt.Sprintf(`"name":"spread-%s-%d","auto_remove":false,"connection":%q`, conn, i, conn), "echo", conn))
		if got := result(t, r)["stdout"]; got != conn+"\n" {
			t.Errorf("run %d on %s: stdout %v", i, conn, got)
		}
	}
	for _, tt := range []struct {
		conn string
		uri  string
		want []string
	}{
		{"a", a.svc.URI, []string{"spread-a-0", "spread-a-2", "spread-a-4"}},
		{"b", b.svc.URI, []string{"spread-b-1", "spread-b-3", "spread-b-5"}},
		{"default", service.URI, nil},
	} {
		r, _ := w.call(`"ps-`+tt.conn+`"`, "ps", fmt.Sprintf(`{"all":true,"connection":%q}`, tt.conn))
		var got []string
		for _, e := range r["result"].([]any) {
			if n := fmt.Sprint(e.(map[string]any)["name"]); strings.HasPrefix(n, "spread-") {
				got = append(got, n)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ps on %s lists %v, want %v", tt.conn, got, tt.want)
		}
		var onHost []string
		for _, c := range onService(t, tt.uri) {
			if strings.HasPrefix(c.Names[0], "spread-") {
				onHost = append(onHost, c.Names[0])
			}
		}
		sort.Strings(onHost)
		if !slices.Equal(onHost, tt.want) {
			t.Errorf("the service behind %s holds %v, want %v", tt.conn, onHost, tt.want)
		}
	}

	// An unknown name: -32602 naming the field and listing the names.
	r, _ := w.call("20", "ping", `{"connection":"c"}`)
	msg, data := errorData(t, r)
	if code := r["error"].(map[string]any)["code"]; code != float64(-32602) || data["field"] != "connection" ||
		!strings.Contains(msg, `no connection is named "c"; the worker's connections are a, b, default, and calls that name none use default`) {
		t.Errorf("sent connection \"c\"; got %v", r)
	}

	// Metrics count calls per connection.
	m := result(t, mustCall(w, "21", "metrics", ""))
	per := m["connections"].(map[string]any)
	if ca := per["a"].(map[string]any); ca["calls"] != float64(4) || ca["owned_containers"] != float64(0) {
		t.Errorf("metrics of a after 3 runs and a ps: %v", ca)
	}

	// b goes down (sshd and Podman killed); a keeps serving. Pings to a
	// are timed before and while b is down, alternating with calls to b.
	ping := func(id, conn string) (time.Duration, map[string]any) {
		start := time.Now()
		r, _ := w.call(id, "ping", fmt.Sprintf(`{"connection":%q}`, conn))
		return time.Since(start), r
	}
	var before, during, toB []time.Duration
	for i := 0; i < 30; i++ {
		d, r := ping(fmt.Sprintf(`"a-%d"`, i), "a")
		if r["result"] != "Pong" {
			t.Fatalf("ping a: %v", r)
		}
		before = append(before, d)
	}
	b.sshd.Kill()
	if err := b.svc.Kill(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		d, r := ping(fmt.Sprintf(`"b-down-%d"`, i), "b")
		if _, data := errorData(t, r); data["type"] != "Unavailable" || data["socket"] != b.uri() {
			t.Fatalf("ping b while it is down: %v", r)
		}
		toB = append(toB, d)
		d, r = ping(fmt.Sprintf(`"a-during-%d"`, i), "a")
		if r["result"] != "Pong" {
			t.Fatalf("ping a while b is down: %v", r)
		}
		during = append(during, d)
	}
	t.Logf("ping a: p50 %v before b went down, %v while it was down (calls to b: p50 %v, each Unavailable)",
		median(before), median(during), median(toB))

	hl := result(t, mustCall(w, "30", "health", ""))
	hc := hl["connections"].(map[string]any)
	if hl["status"] != "ok" || hc["a"].(map[string]any)["connected"] != true || hc["b"].(map[string]any)["connected"] != false {
		t.Errorf("health with b down: %v; want ok (the default serves), a connected, b not", hl)
	}
	for _, id := range []string{"spread-a-0", "spread-a-2", "spread-a-4"} {
		result(t, mustCall(w, `"rm-`+id+`"`, "rm", fmt.Sprintf(`{"container":%q,"force":true,"connection":"a"}`, id)))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// A host that accepts connections and never answers delays no call to
// another connection: with a call to it waiting, ten pings to the default
// are all answered before it is.
func TestSSHHostThatNeverAnswersDelaysNoOther(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	key := filepath.Join(t.TempDir(), "id")
	if _, err := podmantest.WriteKey(key); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--socket", service.URI, "--connection", "silent=ssh://root@"+l.Addr().String()+"/run/podman/podman.sock,"+key,
		"--known-hosts", filepath.Join(t.TempDir(), "known_hosts"), "--request-timeout", "5s", "--max-workers", "4")
	if _, conns := readyOf(t, w.ready); conns["silent"]["connected"] != false || conns["default"]["connected"] != true {
		t.Fatalf("worker.ready: %s", w.ready)
	}
	w.send(`{"jsonrpc":"2.0","id":"silent","method":"ping","params":{"connection":"silent"}}`)
	for i := 0; i < 10; i++ {
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i))
	}
	var order []string
	for len(order) < 11 {
		line, ok := w.next(time.Minute)
		if !ok {
			t.Fatal("the worker closed its output")
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Result any             `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal([]byte(line), &m)
		if string(m.ID) == `"silent"` {
			if m.Error == nil {
				t.Errorf("the silent host answered: %s", line)
			}
		} else if m.Result != "Pong" {
			t.Errorf("a ping to the default: %s", line)
		}
		order = append(order, string(m.ID))
	}
	if order[10] != `"silent"` {
		t.Errorf("replies in the order %v: the call to the silent host must come last", order)
	}
}

// Host keys: an unknown key is refused with a message naming the host and
// the file, unless the operator turns the check off; a key that changes
// under a running worker (a reinstalled host, or an impostor) is refused
// at the next connection.
func TestSSHHostKeyRefused(t *testing.T) {
	h := startSSHHost(t)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	w := startWorker(t, "--socket", h.uri(), "--identity", h.sshd.Identity, "--known-hosts", empty)
	_, conns := readyOf(t, w.ready)
	for _, want := range []string{"ssh host key of " + h.sshd.Addr + " is unknown", "is not in " + empty, "--insecure-ignore-host-key"} {
		if !strings.Contains(fmt.Sprint(conns["default"]["error"]), want) {
			t.Errorf("worker.ready with an empty known_hosts: %s\nwant its error to contain %q", w.ready, want)
		}
	}
	r, _ := w.call("1", "ping", "")
	if msg, data := errorData(t, r); data["type"] != "Unavailable" || !strings.Contains(msg, h.sshd.Addr) || !strings.Contains(msg, empty) {
		t.Errorf("ping to an unknown host: %v", r)
	}
	t.Logf("sent ping to a host whose key is unknown; got %v", r["error"])

	w = startWorker(t, "--socket", h.uri(), "--identity", h.sshd.Identity, "--known-hosts", empty, "--insecure-ignore-host-key")
	if r, _ := w.call("2", "ping", ""); r["result"] != "Pong" {
		t.Errorf("ping with --insecure-ignore-host-key: %v", r)
	}

	w = startWorker(t, "--socket", h.uri(), "--identity", h.sshd.Identity, "--known-hosts", h.sshd.KnownHosts)
	if r, _ := w.call("3", "ping", ""); r["result"] != "Pong" {
		t.Fatalf("ping with the key listed: %v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.sshd.NewHostKey(ctx); err != nil {
		t.Fatal(err)
	}
	// The first call may find the old SSH connection broken; a later one
	// connects again and meets the new key.
	var msg string
	for i := 0; i < 10 && !strings.Contains(msg, "CHANGED"); i++ {
		r, _ := w.call(fmt.Sprintf(`"changed-%d"`, i), "ping", "")
		if r["result"] == "Pong" {
			t.Fatalf("ping after the host key changed: Pong, want it refused")
		}
		msg, _ = errorData(t, r)
	}
	for _, want := range []string{"ssh host key of " + h.sshd.Addr + " has CHANGED", h.sshd.KnownHosts + ":1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ping after the host key changed: %q\nwant it to contain %q", msg, want)
		}
	}
	t.Logf("sent ping after the host key changed; got %q", msg)
}

// Podman's own connection list: podman-connections.json (Podman 5) and
// containers.conf's service_destinations (Podman 4), read only when asked
// for. Podman's default is the worker's default when no socket is set, a
// name in the JSON file hides the same name in containers.conf, and
// --connection hides both.
func TestPodmanConnectionFiles(t *testing.T) {
	h := startSSHHost(t)
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "podman-connections.json")
	conf := filepath.Join(dir, "containers.conf")
	files := map[string]string{
		jsonFile: fmt.Sprintf(`{"Connection":{"Default":"p5","Connections":{"p5":{"URI":%q},"remote":{"URI":%q,"Identity":%q},"shadowed":{"URI":%q}}}}`,
			service.URI, h.uri(), h.sshd.Identity, service.URI),
		conf: fmt.Sprintf("[engine.service_destinations.p4]\nuri = %q\n[engine.service_destinations.shadowed]\nuri = \"unix:///nonexistent.sock\"\n[engine.service_destinations.overridden]\nuri = \"unix:///nonexistent.sock\"\n", h.svc.URI),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PODMAN_CONNECTIONS_CONF", jsonFile)
	t.Setenv("CONTAINERS_CONF", conf)

	w := startWorker(t, "--socket", service.URI) // not asked for: not read
	if _, conns := readyOf(t, w.ready); len(conns) != 1 || conns["default"] == nil {
		t.Errorf("without --podman-connections: %s", w.ready)
	}

	w = startWorker(t, "--podman-connections", "--known-hosts", h.sshd.KnownHosts, "--connection", "overridden="+service.URI)
	def, conns := readyOf(t, w.ready)
	var got []string
	for name, st := range conns {
		got = append(got, fmt.Sprintf("%s=%v", name, st["connected"]))
		if name == "shadowed" && st["socket"] != service.URI {
			t.Errorf("shadowed comes from %v, want podman-connections.json's %s", st["socket"], service.URI)
		}
	}
	sort.Strings(got)
	want := []string{"overridden=true", "p4=true", "p5=true", "remote=true", "shadowed=true"}
	if def != "p5" || !slices.Equal(got, want) {
		t.Errorf("with --podman-connections: default %q, connections %v; want p5 and %v\n%s", def, got, want, w.ready)
	}
	r, _ := w.call("1", "ping", `{"connection":"remote"}`)
	if r["result"] != "Pong" {
		t.Errorf("ping through Podman's ssh connection (its identity from the file): %v", r)
	}

	w = startWorker(t, "--podman-connections", "--known-hosts", h.sshd.KnownHosts, "--socket", h.svc.URI)
	if def, conns := readyOf(t, w.ready); def != "default" || conns["default"]["socket"] != h.svc.URI || conns["p5"] == nil {
		t.Errorf("with --socket and --podman-connections: default %q\n%s", def, w.ready)
	}

	// A file Podman could not read either stops the worker, naming it.
	if err := os.WriteFile(jsonFile, []byte(`{"Connection":`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(workerBin, "--podman-connections", "--socket", service.URI)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "--podman-connections: reading Podman's connection list: parse \""+jsonFile+"\"") {
		t.Errorf("a podman-connections.json cut short: exit %d, %q; want exit 2 naming the file", code, out)
	}
}
