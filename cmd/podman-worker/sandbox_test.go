package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// The sandbox, seen from where an attacker stands: from inside a function
// (its capabilities, mounts, network and files) and on the host (files,
// disk use of the private service's folder, processes, cgroups). Each
// refusal says what was sent and what came back. The defaults are closed;
// the operator's flags open them, and a caller never can.

// refused checks that a call answered an error of type kind naming field,
// with want in its message, and answers the message.
func refused(t *testing.T, w *worker, id, method, params, kind, field, want string) string {
	t.Helper()
	r, _ := w.call(strconv.Quote(id), method, params)
	e, ok := r["error"].(map[string]any)
	if !ok {
		t.Errorf("sent %s %s: got %v; want a %s error naming %q", method, params, r, kind, field)
		return ""
	}
	msg := fmt.Sprint(e["message"])
	data, _ := e["data"].(map[string]any)
	if data["type"] != kind || (field != "" && data["field"] != field) || !strings.Contains(msg, want) {
		t.Errorf("sent %s %s: got %v %q (data %v); want %s, field %q, message with %q", method, params, e["code"], msg, data, kind, field, want)
	}
	return msg
}

// shell is run params for a busybox sh -c script, with extra params.
func shell(extra, script string) string {
	return runParams(extra, "/bin/sh", "-c", script)
}

// stdoutOf runs params and answers its stdout, failing on an error.
func stdoutOf(t *testing.T, w *worker, id, params string) string {
	t.Helper()
	r, _ := w.call(strconv.Quote(id), "run", params)
	res, ok := r["result"].(map[string]any)
	if !ok {
		t.Fatalf("sent run %s: got %v", params, r)
	}
	return fmt.Sprint(res["stdout"])
}

// Host bind mounts: none by default; under --mount-roots only, after
// resolving symlinks, and never Podman's socket, /proc, /sys, /dev or /.
func TestSandboxHostPaths(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	for i, tt := range []struct{ field, value, want string }{
		{"volumes", "/:/host", "--mount-roots is empty"},
		{"volumes", "/etc:/host-etc:ro", "--mount-roots is empty"},
		{"volumes", service.Socket + ":/run/podman.sock", "--mount-roots is empty"},
		{"mounts", "/proc:/hp:rw", "--mount-roots is empty"},
		{"mounts", "/sys:/hsys:rw", "--mount-roots is empty"},
		{"mounts", "/tmp/../etc:/e", "--mount-roots is empty"},
	} {
		refused(t, w, fmt.Sprint(i), "run", shell(fmt.Sprintf("%q:[%q]", tt.field, tt.value), "cat /host/etc/shadow"), "Forbidden", tt.field, tt.want)
	}

	// The operator allows one folder. Below it, symlinks out of it: to a
	// folder holding a secret, and to the service's folder.
	root := t.TempDir()
	data := filepath.Join(root, "data")
	outside := t.TempDir()
	os.Mkdir(data, 0o755)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600)
	os.Symlink(outside, filepath.Join(root, "escape"))
	os.Symlink(service.Dir, filepath.Join(root, "podman"))
	w = startWorker(t, "--socket", service.URI, "--mount-roots", root)
	for i, tt := range []struct{ field, value, kind, want string }{
		{"volumes", "/:/host", "Forbidden", "not under a directory this worker allows"},
		{"volumes", outside + ":/o", "Forbidden", "not under a directory this worker allows"},
		{"volumes", root + "/escape:/o", "Forbidden", "resolves to " + outside},
		{"mounts", root + "/escape/secret:/s", "Forbidden", "resolves to " + outside},
		{"volumes", root + "/podman:/p", "Forbidden", "resolves to " + service.Dir},
		{"mounts", data + "/..:/up", "Forbidden", `".."`},
		{"mounts", root + "/missing:/m", "BadRequest", "does not exist"},
	} {
		refused(t, w, fmt.Sprint("r", i), "run", shell(fmt.Sprintf("%q:[%q]", tt.field, tt.value), "true"), tt.kind, tt.field, tt.want)
	}
	// A root that holds Podman's socket and storage (here /tmp, which holds
	// the private service's folder): they, and anything holding them,
	// stay out of reach.
	tmp := filepath.Dir(service.Dir)
	wide := startWorker(t, "--socket", service.URI, "--mount-roots", tmp)
	for i, v := range []string{service.Socket, service.Dir, filepath.Join(service.Dir, "root"), tmp} {
		refused(t, wide, fmt.Sprint("n", i), "run", shell(fmt.Sprintf(`"volumes":[%q]`, v+":/x"), "true"), "Forbidden", "volumes", "never exposes")
	}
	if _, err := os.Stat(filepath.Join(root, "missing")); err == nil {
		t.Error("a refused mount created its source on the host")
	}
	out := stdoutOf(t, w, "ok", shell(fmt.Sprintf(`"volumes":[%q]`, data+":/data"), "echo written > /data/f && cat /data/f"))
	if got, _ := os.ReadFile(filepath.Join(data, "f")); out != "written\n" || string(got) != "written\n" {
		t.Errorf("a mount under --mount-roots: stdout %q, host file %q", out, got)
	}
}

// From inside a function under the defaults: no capabilities, no new
// privileges, a read-only root with tmpfs scratch the size of the memory
// limit, no host user namespace choice made for it, no network but lo, and
// the kernel's settings out of reach.
func TestSandboxSeenFromInside(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	script := `grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -d ' \t'
grep -E ' (/|/tmp|/var/tmp|/run|/dev/shm) ' /proc/self/mounts | cut -d' ' -f2-4 | sed 's/,relatime//; s/,seclabel//'
echo net=$(ls /sys/class/net)
touch /rootfile 2>/dev/null && echo root-writable || echo root-read-only
touch /etc/hosts 2>/dev/null && echo hosts-writable || echo hosts-read-only
for d in /tmp /var/tmp /run; do echo x > $d/f && echo $d-writable; done
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo drop_caches-written || echo drop_caches-refused
mknod /tmp/dev c 1 3 2>/dev/null && echo mknod-allowed || echo mknod-refused
chown 65534 /tmp/f 2>/dev/null && echo chown-allowed || echo chown-refused`
	out := stdoutOf(t, w, "1", shell(`"memory":"32m"`, script))
	for _, want := range []string{
		"CapEff:0000000000000000", "CapBnd:0000000000000000", "NoNewPrivs:1",
		"\n/ overlay ro,",
		"/tmp tmpfs rw,nosuid,nodev,size=32768k", "/var/tmp tmpfs rw,nosuid,nodev,size=32768k", "/run tmpfs rw,nosuid,nodev,size=32768k",
		"/dev/shm tmpfs", "net=lo\n", "root-read-only", "hosts-read-only",
		"/tmp-writable", "/var/tmp-writable", "/run-writable", "drop_caches-refused", "mknod-refused", "chown-refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inside a default function, %q is missing from:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "/dev/shm tmpfs rw,nosuid,nodev,noexec,size=32768k") && !strings.Contains(out, "/dev/shm tmpfs ro,") {
		t.Errorf("/dev/shm is not a tmpfs of the memory limit:\n%s", out)
	}

	// A caller cannot give capabilities back; the operator's list can.
	refused(t, w, "2", "run", shell(`"cap_add":["NET_RAW"]`, "true"), "Forbidden", "cap_add", "--allow-caps is empty")
	w = startWorker(t, "--socket", service.URI, "--allow-caps", "NET_BIND_SERVICE,CHOWN")
	refused(t, w, "3", "run", shell(`"cap_add":["SYS_ADMIN"]`, "true"), "Forbidden", "cap_add", "--allow-caps NET_BIND_SERVICE,CHOWN")
	out = stdoutOf(t, w, "4", shell(`"cap_add":["net_bind_service"]`, "grep CapEff /proc/self/status | tr -d ' \t'"))
	if out != "CapEff:0000000000000400\n" { // bit 10: CAP_NET_BIND_SERVICE
		t.Errorf("cap_add [net_bind_service] with --allow-caps NET_BIND_SERVICE: %q", out)
	}

	// The operator can give writable roots back.
	w = startWorker(t, "--socket", service.URI, "--writable-root")
	if out := stdoutOf(t, w, "5", shell("", "touch /home/f && echo root-writable")); out != "root-writable\n" {
		t.Errorf("--writable-root: %q", out)
	}
}

// Host disk: a function that floods stdout and writes everywhere it can
// leaves the private service's folder (storage, run root, logs) all but
// unchanged, and a long-lived container's log stops at --max-log-bytes.
// du -x counts the host's disk only: the container's root is an overlay
// mount and its scratch space tmpfs, both outside it.
func TestSandboxHostDisk(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI, "--max-log-bytes", "256k")
	du := func() int64 {
		out, err := exec.Command("du", "-sbx", svc.Dir).Output()
		// Containers are made and removed while du walks the folder: a
		// file that vanished makes it exit 1, with its total printed all
		// the same. Anything else is a failure.
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 && len(out) > 0 {
			for _, line := range strings.Split(strings.TrimSpace(string(exit.Stderr)), "\n") {
				if !strings.Contains(line, "No such file or directory") {
					t.Fatalf("du: %v: %s", err, exit.Stderr)
				}
			}
		} else if err != nil {
			t.Fatalf("du: %v", err)
		}
		n, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
		return n
	}
	measure := func(id, params string) (grew int64, reply map[string]any) {
		before := du()
		w.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"method":"run","params":%s}`, id, params))
		peak := before
		for {
			if n := du(); n > peak {
				peak = n
			}
			select {
			case line := <-w.lines:
				if strings.Contains(line, `"id":"`+id+`"`) {
					return peak - before, map[string]any{"line": line}
				}
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	// 1. stdout and stderr flooded for 3 seconds: the worker reads the
	// stream, keeps its first MiB and drops the rest; nothing is logged.
	flood, r := measure("flood", shell(`"timeout":3`, "yes & yes >&2 & wait"))
	if !strings.Contains(fmt.Sprint(r), `"type":"Timeout"`) {
		t.Errorf("the flood did not run to its timeout: %v", r)
	}
	// 2. Every writable place filled at once, while stdout floods: the
	// root and /etc refuse, the tmpfs mounts fill memory until the
	// memory limit's OOM killer ends it.
	fill, r := measure("fill", shell(`"memory":"64m","timeout":5`,
		`yes & for d in / /etc /root /home /tmp /var/tmp /run /dev/shm /dev; do dd if=/dev/zero of=$d/fill bs=1M count=512 2>/dev/null; done; sleep 10`))
	t.Logf("host disk used during the runs (du -sbx %s): stdout and stderr flood %d bytes, flood plus writes to every writable place %d bytes; last reply %.300s",
		svc.Dir, flood, fill, r["line"])
	// The container's own bookkeeping (its spec, bundle and state files)
	// is tens of KiB; a log of the flood would be hundreds of MB.
	for name, grew := range map[string]int64{"flood": flood, "fill": fill} {
		if grew > 1<<20 {
			t.Errorf("%s: the service's folder grew by %d bytes on the host's disk during the run; want under 1 MiB", name, grew)
		}
	}

	// 3. A long-lived container's log file stops at --max-log-bytes.
	result(t, mustCall(w, `"c"`, "create", `{"image":"localhost/busybox:latest","name":"chatty","command":["yes","a line of a long-lived container"]}`))
	var logs []string
	eventually(time.Minute, func() bool {
		logs, _ = filepath.Glob(filepath.Join(svc.Dir, "root", "overlay-containers", "*", "userdata", "ctr.log"))
		return len(logs) == 1
	})
	if len(logs) != 1 {
		t.Fatalf("want the one log file of the created container, found %v", logs)
	}
	// yes writes far faster than the cap: the file is sampled until conmon
	// has cut it back once (its size fell), for 10 s at most, and no sample
	// may exceed the cap.
	var largest, last int64
	cut := eventually(10*time.Second, func() bool {
		st, err := os.Stat(logs[0])
		if err != nil {
			return false
		}
		largest = max(largest, st.Size())
		fell := st.Size() < last
		last = st.Size()
		return fell
	})
	if largest > 256<<10 || largest == 0 {
		t.Errorf("the created container's log file reached %d bytes (cut back: %v); want at most --max-log-bytes 256k", largest, cut)
	}
	// Its logs still read (after a stop, so conmon is not truncating the
	// file just then).
	result(t, mustCall(w, `"stop"`, "stop", `{"name":"chatty","timeout":0}`))
	if r, _ := w.call(`"l"`, "logs", `{"name":"chatty","tail":2}`); !strings.Contains(fmt.Sprint(r["result"]), "a line of a long-lived container") {
		t.Errorf("logs of the capped container: %v", r)
	}
	result(t, mustCall(w, `"rm"`, "rm", `{"container":"chatty","force":true}`))
}

// hostAddress is a non-loopback IPv4 address of this host, "" if none.
func hostAddress() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() && !ip.IP.IsLinkLocalUnicast() {
			if !strings.HasPrefix(ip.IP.String(), "10.88.") { // Podman's own bridge
				return ip.IP.String()
			}
		}
	}
	return ""
}

// Network: only none by default, so a function reaches nothing on the
// host; with bridge allowed, published ports bind to 127.0.0.1 and never
// below 1024 unless the operator allows them.
func TestSandboxNetwork(t *testing.T) {
	host := hostAddress()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host service\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	w := startWorker(t, "--socket", service.URI)
	refused(t, w, "1", "run", shell(`"network_mode":"bridge"`, "true"), "Forbidden", "network_mode", "--network-modes none")
	if host != "" {
		out := stdoutOf(t, w, "2", shell("", fmt.Sprintf("nc -w 2 %s %d 2>&1 || echo unreachable; nc -w 2 127.0.0.1 %d 2>&1 || echo no-host-loopback", host, port, port)))
		if strings.Contains(out, "host service") || !strings.Contains(out, "unreachable") || !strings.Contains(out, "no-host-loopback") {
			t.Errorf("a default function reached the host's service on %s:%d or 127.0.0.1: %q", host, port, out)
		}
	}

	w = startWorker(t, "--socket", service.URI, "--network-modes", "none,bridge")
	create := func(name, ports string) string {
		return fmt.Sprintf(`{"image":"localhost/busybox:latest","name":%q,"network_mode":"bridge","ports":[%q],"command":["/bin/sh","-c","mkdir -p /tmp/w && echo served > /tmp/w/i && exec httpd -f -p 8080 -h /tmp/w"]}`, name, ports)
	}
	refused(t, w, "3", "create", create("priv", "80:8080"), "Forbidden", "ports", "--allow-privileged-ports")
	refused(t, w, "4", "create", create("everywhere", "0.0.0.0:18091:8080"), "Forbidden", "ports", "--port-addresses 127.0.0.1")
	result(t, mustCall(w, `"5"`, "create", create("loopback-only", "18091:8080")))
	defer w.call(`"rm"`, "rm", `{"container":"loopback-only","force":true}`)
	get := func(addr string) (string, error) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /i HTTP/1.0\r\n\r\n")
		b := make([]byte, 4096)
		n, _ := c.Read(b)
		return string(b[:n]), nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := get("127.0.0.1:18091")
		if err == nil && strings.Contains(body, "served") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ports [18091:8080] never answered on 127.0.0.1: %v %q", err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if host != "" {
		if body, err := get(host + ":18091"); err == nil && strings.Contains(body, "served") {
			t.Errorf("ports [18091:8080] (no address given) answered on the host's address %s too: %q", host, body)
		}
	}
}

// Numbers: ceilings that cannot be overflowed, and oom_killed only when
// confirmed.
func TestSandboxNumbers(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	start := time.Now()
	refused(t, w, "1", "run", shell(`"timeout":1e10`, "true"), "Forbidden", "timeout", "--max-timeout")
	refused(t, w, "2", "run", shell(`"timeout":"1e10"`, "true"), "Forbidden", "timeout", "--max-timeout")
	refused(t, w, "3", "run", shell(`"timeout":-0`, "true"), "BadRequest", "timeout", "positive")
	refused(t, w, "4", "run", shell(`"timeout":1e-12`, "true"), "BadRequest", "timeout", "nanosecond")
	refused(t, w, "5", "run", shell(`"memory":"99999999999t"`, "true"), "BadRequest", "memory", "too large")
	refused(t, w, "6", "run", shell(`"memory_swap":"8t"`, "true"), "Forbidden", "memory_swap", "--max-memory-swap")
	refused(t, w, "7", "run", shell(`"memory_swap":"99999999999t"`, "true"), "BadRequest", "memory_swap", "too large")
	refused(t, w, "8", "run", shell(`"pids_limit":-0`, "true"), "BadRequest", "pids_limit", "")
	refused(t, w, "9", "run", shell(`"mounts":["tmpfs:/scratch:size=1g"]`, "true"), "Forbidden", "mounts", "memory limit")
	if took := time.Since(start); took > 30*time.Second {
		t.Logf("the refusals took %v", took) // no assertion on time: they never reach Podman
	}

	// "exit 137" is not an OOM kill: the kernel counted none.
	r, _ := w.call(`"10"`, "run", shell(`"name":"fake-oom"`, "echo small; exit 137"))
	msg, data := errorData(t, r)
	if data["exit_code"] != float64(137) || data["oom_killed"] == true || strings.Contains(msg, "out of memory") {
		t.Errorf(`sent "echo small; exit 137": got %q %v; want exit 137 without oom_killed`, msg, data)
	}
	// A real one is confirmed by the kernel's count.
	r, _ = w.call(`"11"`, "run", shell(`"name":"real-oom"`, `x=$(head -c 60000000 /dev/zero | tr '\0' a); echo ${#x}`))
	msg, data = errorData(t, r)
	if data["oom_killed"] != true || !strings.Contains(msg, "ran out of memory (memory limit 20m)") {
		t.Errorf("sent a 60 MB string under 20m: got %q %v; want oom_killed", msg, data)
	}
	// Over tcp the worker cannot read Podman's cgroups: an exit 137 is then
	// reported as a SIGKILL whose cause is not confirmed.
	proxy := unixProxy(t, service.Socket)
	w = startWorker(t, "--socket", "tcp://"+proxy)
	r, _ = w.call(`"12"`, "run", shell(`"name":"unconfirmed"`, "echo small; exit 137"))
	msg, data = errorData(t, r)
	if data["oom_killed"] != false || data["killed_by"] != "SIGKILL" || !strings.Contains(msg, "likely cause") || !strings.Contains(msg, "tcp") {
		t.Errorf(`over tcp, sent "echo small; exit 137": got %q %v; want oom_killed false, killed_by SIGKILL and why`, msg, data)
	}
}

// unixProxy forwards a local tcp port to a unix socket, so a worker can
// reach the private service the way it reaches a remote one.
func unixProxy(t *testing.T, socket string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { copyConn(u, c); done <- struct{}{} }()
				go func() { copyConn(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

func copyConn(dst, src net.Conn) {
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 {
			if _, werr := dst.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// addSubIDs gives the user "containers" a range in /etc/subuid and
// /etc/subgid for the test, as --userns auto needs, and removes exactly
// that line afterwards.
func addSubIDs(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("editing /etc/subuid needs root")
	}
	const line = "containers:2147483647:2147483648"
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(data), line) {
			continue // someone's range is there already; leave it
		}
		fd, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(fd, line)
		fd.Close()
		t.Cleanup(func() {
			data, _ := os.ReadFile(f)
			kept := strings.Replace(string(data), line+"\n", "", 1)
			if err := os.WriteFile(f, []byte(kept), 0o644); err != nil {
				t.Errorf("restoring %s: %v", f, err)
			}
		})
	}
}

// --userns auto: container root is an unprivileged host uid, seen from
// inside (uid_map) and on the host (the owner of a file it writes).
func TestSandboxUserNamespace(t *testing.T) {
	addSubIDs(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777) // the container's root is not host root any more
	w := startWorker(t, "--socket", service.URI, "--userns", "auto", "--mount-roots", dir)
	out := stdoutOf(t, w, "1", shell(fmt.Sprintf(`"volumes":[%q]`, dir+":/data"), "cat /proc/self/uid_map; id -u; echo x > /data/by-container"))
	fields := strings.Fields(out)
	if len(fields) < 4 || (fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295") || fields[3] != "0" {
		t.Errorf("--userns auto, uid_map and id -u inside: %q; want root mapped to a range, not the host's ids", out)
	}
	st, err := os.Stat(filepath.Join(dir, "by-container"))
	if err != nil {
		t.Fatalf("the file the container wrote: %v", err)
	}
	uid := st.Sys().(*syscall.Stat_t).Uid
	if uid < 2147483647 {
		t.Errorf("a file written by container root is owned by host uid %d; want one from the containers range (2147483647 and up)", uid)
	}

	// Warm instances under --userns auto: the runner starts inside the
	// mapped namespace, and the function it serves next is mapped too.
	var maps []string
	for i, want := range []string{"cold", "reused"} {
		res := result(t, mustCall(w, fmt.Sprintf(`"r%d"`, i), "run", `{"image":"localhost/busybox:latest","command":["cat","/proc/self/uid_map"],"reuse":true}`))
		m := strings.Fields(fmt.Sprint(res["stdout"]))
		if res["start"] != want || len(m) != 3 || m[0] != "0" || m[1] == "0" {
			t.Errorf("reused run %d under --userns auto: start %v, uid_map %q; want %s and root mapped to a range", i, res["start"], res["stdout"], want)
		}
		maps = append(maps, fmt.Sprint(res["stdout"]))
	}
	if maps[0] != maps[1] {
		t.Errorf("one instance, two uid_maps: %q", maps)
	}

	// Without the flag, container root is host root, as Podman's default.
	w = startWorker(t, "--socket", service.URI)
	if out := stdoutOf(t, w, "2", shell("", "cat /proc/self/uid_map")); !regexp.MustCompile(`^\s*0\s+0\s+4294967295\s*$`).MatchString(out) {
		t.Errorf("the default user namespace: %q", out)
	}
}

// Files: add_file refuses special modes, a directory path and a read-only
// place; add_user writes the in-memory /etc and /home.
func TestSandboxFiles(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	result(t, mustCall(w, `"c"`, "create", `{"image":"localhost/busybox:latest","name":"files-box","command":["sleep","300"]}`))
	defer w.call(`"rm"`, "rm", `{"container":"files-box","force":true}`)
	for i, mode := range []string{"4755", "2755", "1777", "7777"} {
		refused(t, w, fmt.Sprint("m", i), "add_file", `{"name":"files-box","dest_path":"/tmp/s","content":"x","mode":"`+mode+`"}`, "Forbidden", "mode", "--allow-special-modes")
	}
	refused(t, w, "slash", "add_file", `{"name":"files-box","dest_path":"/tmp/newfile/","content":"x"}`, "BadRequest", "dest_path", `ends in "/"`)
	// The root is read-only: outside its writable places, add_file is
	// refused before anything is written, naming them and the param.
	refused(t, w, "ro", "add_file", `{"name":"files-box","dest_path":"/usr/local/bin/tool","content":"x"}`, "Forbidden", "", `"writable" param`)
	r, _ := w.call(`"ls"`, "exec", `{"name":"files-box","command":"ls -A /tmp; test -e /usr/local/bin/tool || echo no tool; touch /bin/x 2>&1"}`)
	if out := fmt.Sprint(r["result"]); !strings.Contains(out, "output:no tool\ntouch: /bin/x: Read-only file system") {
		t.Errorf("after the refusals, /tmp, /usr/local/bin/tool and the root: %s; want nothing written, the root read-only", out)
	}
	// add_user works: /etc and /home are in-memory copies (the user is
	// then seen from inside, its home made).
	result(t, mustCall(w, `"user"`, "add_user", `{"name":"files-box","username":"eve"}`))
	r, _ = w.call(`"id"`, "exec", `{"name":"files-box","command":"id; grep -c eve /etc/passwd; grep -E ' /(etc|home) ' /proc/mounts | cut -d' ' -f3 | sort -u","user":"eve"}`)
	if out := fmt.Sprint(result(t, r)["output"]); out != "uid=1000(eve) gid=1000(eve)\n1\ntmpfs\n" {
		t.Errorf("exec as the added user: %q", out)
	}
	result(t, mustCall(w, `"ok"`, "add_file", `{"name":"files-box","dest_path":"/tmp/ok","content":"fine","mode":"0755"}`))
}

// Builds: only under --build-roots, within --max-build-context; RUN steps
// with no network, bounded memory, cpu and processes, fewer capabilities;
// a timeout that stops a running step and leaves nothing behind.
func TestSandboxBuild(t *testing.T) {
	w := startWorker(t, "--socket", service.URI)
	refused(t, w, "none", "build", fmt.Sprintf(`{"context":%q}`, testdataBuild()+"/hello"), "Forbidden", "context", "--build-roots is empty")

	roots := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("root only"), 0o600)
	os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM localhost/busybox:latest\nCOPY secret /\n"), 0o644)
	ctx := filepath.Join(roots, "ctx")
	os.Mkdir(ctx, 0o755)
	os.Symlink(filepath.Join(outside, "Dockerfile"), filepath.Join(ctx, "Linked"))
	os.WriteFile(filepath.Join(ctx, "big"), make([]byte, 8<<10), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM localhost/busybox:latest
ARG PORT
RUN grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -d ' \t'; echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) net=$(ls /sys/class/net | tr '\n' ' ')
RUN nc -w 2 127.0.0.1 $PORT </dev/null && echo reached-host-loopback || echo no-host-loopback
RUN i=0; while [ $i -lt 40 ]; do sleep 3 & i=$((i+1)); done 2>&1 | tail -1; wait
`), 0o644)
	small := filepath.Join(roots, "small")
	os.Mkdir(small, 0o755)
	os.WriteFile(filepath.Join(small, "Dockerfile"), []byte("FROM localhost/busybox:latest\n"), 0o644)
	os.WriteFile(filepath.Join(small, "big"), make([]byte, 8<<10), 0o644)
	os.WriteFile(filepath.Join(small, ".dockerignore"), []byte("big\n"), 0o644)

	w = startWorker(t, "--socket", service.URI, "--build-roots", roots, "--max-build-context", "4k")
	for i, tt := range []struct{ params, kind, field, want string }{
		{fmt.Sprintf(`{"context":%q}`, outside), "Forbidden", "context", "--build-roots " + roots},
		{`{"context":"../` + filepath.Base(outside) + `"}`, "Forbidden", "context", `".."`},
		{`{"context":"/root"}`, "Forbidden", "context", "--build-roots"},
		{fmt.Sprintf(`{"context":%q,"file":%q}`, ctx, filepath.Join(outside, "Dockerfile")), "Forbidden", "file", "--build-roots"},
		{fmt.Sprintf(`{"context":%q,"file":"Linked"}`, ctx), "Forbidden", "file", "resolves to"},
		{`{"context":"ctx"}`, "Forbidden", "context", "--max-build-context"},
		{`{"context":"ctx","network_mode":"bridge"}`, "Forbidden", "network_mode", "--network-modes"},
		{`{"context":"ctx","timeout":86400}`, "Forbidden", "timeout", "--max-build-timeout"},
		{`{"context":"ctx","memory":"4g"}`, "Forbidden", "memory", "--max-memory"},
	} {
		refused(t, w, fmt.Sprint("b", i), "build", tt.params, tt.kind, tt.field, tt.want)
	}
	// Files a .dockerignore leaves out do not count.
	if r, _ := w.call(`"small"`, "build", `{"context":"small","tag":"sandbox-small"}`); r["result"] == nil {
		t.Errorf("a context whose 8k file is in .dockerignore, under --max-build-context 4k: %v", r)
	}
	w.call(`"rmi-small"`, "rmi", `{"image":"sandbox-small","force":true}`)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	w = startWorker(t, "--socket", service.URI, "--build-roots", roots)
	r, lines := w.call(`"run-steps"`, "build", fmt.Sprintf(`{"context":"ctx","tag":"sandbox-steps","no_cache":true,"pids_limit":20,"build_args":{"PORT":"%d"}}`,
		ln.Addr().(*net.TCPAddr).Port))
	out := strings.Join(lines, "\n")
	for _, want := range []string{
		`CapBnd:00000000000000fb`, // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID: no NET_RAW, MKNOD, AUDIT_WRITE, SYS_CHROOT, SETFCAP
		`mem=536870912 quota=100000 net=lo"`, "no-host-loopback", "can't fork",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("build RUN steps: %q is missing from the progress lines:\n%s\n(reply %v)", want, out, r)
		}
	}
	// Podman's API cannot set no-new-privileges for RUN steps (it refuses
	// the option for remote builds): stated, not hidden.
	if !strings.Contains(out, "NoNewPrivs:0") {
		t.Logf("RUN steps now report NoNewPrivs:1; protocol.md says 0: update it")
	}
	w.call(`"rmi"`, "rmi", `{"image":"sandbox-steps","force":true}`)
}

// A build past its timeout: the running RUN step is killed and the call
// answers Timeout; no process, build container, image or cgroup is left.
func TestSandboxBuildTimeout(t *testing.T) {
	svc := privateService(t)
	roots := t.TempDir()
	os.WriteFile(filepath.Join(roots, "Dockerfile"), []byte("FROM localhost/busybox:latest\nRUN echo started && sleep 2913 && echo never\n"), 0o644)
	w := startWorker(t, "--socket", svc.URI, "--build-roots", roots)
	r, _ := w.call(`"slow"`, "build", `{"context":".","tag":"sandbox-timeout","timeout":2}`)
	msg, data := errorData(t, r)
	if data["type"] != "Timeout" || data["status"] != float64(408) || !strings.Contains(msg, "timeout of 2s") ||
		!strings.Contains(fmt.Sprint(data["logs"]), "started") {
		t.Errorf("sent a build whose RUN sleeps 2913 s with timeout 2: got %q %v", msg, data)
	}
	for _, pid := range podmantest.ProcessesMentioning("sleep 2913") {
		t.Errorf("process %d of the stopped build is still running", pid)
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/podman-worker-build-*"); len(dirs) > 0 {
		// Other workers' builds may be running on this host: only report.
		t.Logf("build cgroups present after the build: %v", dirs)
	}
	cmd := exec.Command("podman", append(svc.PodmanArgs(), "ps", "--all", "--external", "--format", "{{.ID}} {{.Names}}")...)
	cmd.Env = svc.Env()
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers left in the store after the stopped build (podman ps --all --external): %q %v", out, err)
	}
	if r, _ := w.call(`"exists"`, "exists", `{"image":"sandbox-timeout"}`); r["result"] != false {
		t.Errorf("the stopped build's tag exists: %v", r)
	}
	if r, _ := w.call(`"images"`, "images", `{"all":true}`); strings.Count(fmt.Sprint(r["result"]), "id:") != 1 {
		t.Errorf("images after the stopped build: %v; want only the base image", r["result"])
	}
}
