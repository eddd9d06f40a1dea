package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// Builds seen from the host, where an attacker's Containerfile aims: a
// 0600 file outside every build root, a folder it would write into, and a
// service on the host's loopback that only Podman's own fetches could
// reach. Each Containerfile below reached one of them before the worker
// read Containerfiles (buildah 1.28 has no fix for CVE-2024-1753 or
// CVE-2024-9675). Each is now refused, through JSON-RPC and the per-call
// CLI alike, and the host shows nothing read, written or fetched.
func TestBuildsReachNothingOnTheHost(t *testing.T) {
	svc := privateService(t)
	outside := t.TempDir()
	secret := "host-secret-" + strconv.Itoa(os.Getpid())
	secretPath := filepath.Join(outside, "shadow")
	os.WriteFile(secretPath, []byte(secret), 0o600)
	marker := filepath.Join(outside, "written")
	os.Mkdir(marker, 0o755)

	var fetched atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		fmt.Fprint(w, secret)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	roots := t.TempDir()
	ctx := filepath.Join(roots, "ctx")
	os.Mkdir(ctx, 0o755)
	os.Symlink("/", filepath.Join(ctx, "hostroot"))
	os.WriteFile(filepath.Join(ctx, "data.txt"), []byte("context data\n"), 0o644)
	base := podmantest.BusyboxImage
	files := map[string]string{
		"cache-traversal": "FROM " + base + "\nRUN --mount=type=cache,id=../../../../../../../../..,target=/mnt cat /mnt" + secretPath + "\n",
		"bind-symlink":    "FROM " + base + "\nRUN --mount=type=bind,source=hostroot,target=/mnt,rw cat /mnt" + secretPath + "; touch /mnt" + marker + "/bind\n",
		"bind-stage":      "FROM " + base + " AS base\nRUN ln -s / /rootlink\nFROM " + base + "\nRUN --mount=type=bind,from=base,source=/rootlink,target=/mnt cat /mnt" + secretPath + "\n",
		"cache-shared":    "FROM " + base + "\nRUN --mount=type=cache,id=shared,target=/c echo leftover > /c/x\n",
		"add-url":         fmt.Sprintf("FROM %s\nADD http://127.0.0.1:%d/secret.txt /s\n", base, port),
		"add-url-env":     fmt.Sprintf("FROM %s\nENV U=http://127.0.0.1:%d/secret.txt\nADD ${U} /s\n", base, port),
		"from-remote":     fmt.Sprintf("FROM 127.0.0.1:%d/img\nRUN true\n", port),
		"label":           "FROM " + base + "\nLABEL io.podman-worker.owner=someone-else\n",
	}
	for name, text := range files {
		os.WriteFile(filepath.Join(ctx, name), []byte(text), 0o644)
	}
	w := startWorker(t, "--socket", svc.URI, "--build-roots", roots)
	var seen []string
	for name := range files {
		r, lines := w.call(strconv.Quote(name), "build", fmt.Sprintf(`{"context":"ctx","file":%q,"tag":"attack"}`, name))
		seen = append(seen, lines...)
		seen = append(seen, fmt.Sprint(r))
		msg, data := errorData(t, r)
		if (data["type"] != "Forbidden" && data["type"] != "NotFound") || data["field"] != "file" || !strings.Contains(msg, "Containerfile line") {
			t.Errorf("sent the %s Containerfile %q: got %q %v; want Forbidden or NotFound naming the line", name, files[name], msg, data)
		}
	}
	// The per-call CLI's build goes through the same check.
	cli := exec.Command(workerBin, "--socket", svc.URI, "--build-roots", roots, "build", ctx, "-f", filepath.Join(ctx, "bind-symlink"), "-t", "attack")
	out, err := cli.CombinedOutput()
	seen = append(seen, string(out))
	if err == nil || !strings.Contains(string(out), `"success":false`) || !strings.Contains(string(out), "--mount=type=bind is not allowed") {
		t.Errorf("CLI build of the bind-symlink Containerfile: %v %s; want exit 1 and the refusal", err, out)
	}
	// With the operator's --build-context-mounts, a read-only bind of the
	// context works, and the symlink to / is still refused.
	os.WriteFile(filepath.Join(ctx, "bind-ok"), []byte("FROM "+base+"\nRUN --mount=type=bind,source=data.txt,target=/d cat /d\n"), 0o644)
	w2 := startWorker(t, "--socket", svc.URI, "--build-roots", roots, "--build-context-mounts")
	r, lines := w2.call(`"bind-ok"`, "build", `{"context":"ctx","file":"bind-ok","tag":"bind-ok"}`)
	if r["result"] == nil || !strings.Contains(strings.Join(lines, "\n"), "context data") {
		t.Errorf("a read-only bind of data.txt under --build-context-mounts: %v\n%s", r, strings.Join(lines, "\n"))
	}
	os.WriteFile(filepath.Join(ctx, "bind-symlink-ro"), []byte("FROM "+base+"\nRUN --mount=type=bind,source=hostroot,target=/mnt cat /mnt"+secretPath+"\n"), 0o644)
	r, lines = w2.call(`"bind-symlink"`, "build", `{"context":"ctx","file":"bind-symlink-ro","tag":"attack"}`)
	seen = append(seen, lines...)
	seen = append(seen, fmt.Sprint(r))
	if msg, data := errorData(t, r); data["type"] != "Forbidden" || !strings.Contains(msg, "symlink") {
		t.Errorf("bind of hostroot (a symlink to /) under --build-context-mounts: %q %v; want Forbidden naming the symlink", msg, data)
	}
	w2.call(`"rmi"`, "rmi", `{"image":"bind-ok"}`)

	// The host's side.
	for _, s := range seen {
		if strings.Contains(s, secret) {
			t.Errorf("the host secret reached the caller: %q", s)
		}
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("the service on the host's loopback was fetched %d times", n)
	}
	if entries, _ := os.ReadDir(marker); len(entries) != 0 {
		t.Errorf("a build wrote into the host folder %s: %v", marker, entries)
	}
	if caches, _ := filepath.Glob("/var/tmp/buildah-cache*"); len(caches) > 0 {
		for _, c := range caches {
			if st, err := os.Stat(c); err == nil && st.ModTime().After(time.Now().Add(-5*time.Minute)) {
				t.Errorf("a build cache folder was made on the host: %s", c)
			}
		}
	}
	if r, _ := w.call(`"exists"`, "exists", `{"image":"attack"}`); r["result"] != false {
		t.Errorf("an image of a refused build exists: %v", r)
	}
}

// Images belong to owners: two workers of different owners share one
// service. Neither sees, runs, builds FROM, retags, removes or prunes the
// other's images; both use the operator's shared base image and neither
// changes it; an image made by hand is nobody's and nobody's to take.
func TestImagesBelongToOwners(t *testing.T) {
	svc := privateService(t)
	roots := t.TempDir()
	for name, text := range map[string]string{
		"app":  "FROM " + podmantest.BusyboxImage + "\nCMD [\"echo\", \"victim's function\"]\n",
		"evil": "FROM " + podmantest.BusyboxImage + "\nCMD [\"echo\", \"evil's function\"]\n",
		"from": "FROM localhost/app:1\nCMD [\"echo\", \"built on the victim's image\"]\n",
	} {
		os.MkdirAll(filepath.Join(roots, name), 0o755)
		os.WriteFile(filepath.Join(roots, name, "Dockerfile"), []byte(text), 0o644)
	}
	podmanCLI := func(args ...string) {
		cmd := exec.Command("podman", append([]string{"--url", svc.URI}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("podman %v: %v %s", args, err, out)
		}
	}
	hand := t.TempDir()
	os.WriteFile(filepath.Join(hand, "Containerfile"), []byte("FROM "+podmantest.BusyboxImage+"\nLABEL made=by-hand\n"), 0o644)
	podmanCLI("build", "-t", "localhost/handmade:1", hand)

	victim := startWorker(t, "--socket", svc.URI, "--owner", "victim", "--build-roots", roots)
	evil := startWorker(t, "--socket", svc.URI, "--owner", "evil", "--build-roots", roots)
	if r, _ := victim.call(`"b"`, "build", `{"context":"app","tag":"app:1"}`); r["result"] == nil {
		t.Fatalf("victim's build: %v", r)
	}
	if r, _ := evil.call(`"b"`, "build", `{"context":"evil","tag":"evil:1"}`); r["result"] == nil {
		t.Fatalf("evil's build: %v", r)
	}

	// What evil sends, and what must come back.
	refused(t, evil, "retag", "build", `{"context":"evil","tag":"app:1","force":true}`, "Conflict", "tag", "did not build")
	refused(t, evil, "take-shared", "build", `{"context":"evil","tag":"`+podmantest.BusyboxImage+`","force":true}`, "Conflict", "tag", "did not build")
	refused(t, evil, "take-handmade", "build", `{"context":"evil","tag":"handmade:1","force":true}`, "Conflict", "tag", "did not build")
	refused(t, evil, "from", "build", `{"context":"from","tag":"evil:2"}`, "NotFound", "file", "line 1")
	for _, tt := range []struct{ method, params string }{
		{"run", `{"image":"app:1"}`},
		{"inspect", `{"image":"app:1"}`},
		{"rmi", `{"image":"app:1","force":true}`},
		{"run", `{"image":"localhost/handmade:1"}`},
		{"create", `{"image":"app:1","name":"evil-box"}`},
		{"prewarm", `{"image":"app:1","count":1}`},
	} {
		r, _ := evil.call(`"x"`, tt.method, tt.params)
		if msg, data := errorData(t, r); data["type"] != "NotFound" || !strings.Contains(msg, "no such image") {
			t.Errorf("evil sent %s %s: got %q %v; want NotFound as for an image that does not exist", tt.method, tt.params, msg, data)
		}
	}
	if r, _ := evil.call(`"exists"`, "exists", `{"image":"app:1"}`); r["result"] != false {
		t.Errorf("evil: exists app:1 = %v; want false", r)
	}
	refused(t, evil, "rmi-shared", "rmi", `{"image":"`+podmantest.BusyboxImage+`"}`, "Forbidden", "", "--shared-images")
	r, _ := evil.call(`"images"`, "images", `{"all":true}`)
	if list := fmt.Sprint(r["result"]); strings.Contains(list, "app:1") || strings.Contains(list, "handmade") ||
		!strings.Contains(list, "evil:1") || !strings.Contains(list, "busybox") {
		t.Errorf("evil's images: %s; want evil:1 and the shared busybox only", list)
	}
	if r, _ := evil.call(`"prune"`, "prune", `{"all":true}`); r["result"] == nil {
		t.Errorf("evil's prune: %v", r)
	}

	// The victim's image is untouched, and runs the victim's function.
	r, _ = victim.call(`"run"`, "run", `{"image":"app:1"}`)
	if res := result(t, r); res["stdout"] != "victim's function\n" {
		t.Errorf("the victim's run after evil's attempts printed %q", res["stdout"])
	}
	r, _ = victim.call(`"images"`, "images", `{}`)
	if list := fmt.Sprint(r["result"]); strings.Contains(list, "evil") || !strings.Contains(list, "app:1") {
		t.Errorf("victim's images: %s", list)
	}
	if r, _ := victim.call(`"exists"`, "exists", `{"image":"localhost/handmade:1"}`); r["result"] != false {
		t.Errorf("an image made by hand is nobody's: exists answered %v", r)
	}
	// Evil's prune all removed its own unused image only.
	if r, _ := evil.call(`"exists"`, "exists", `{"image":"evil:1"}`); r["result"] != false {
		t.Errorf("evil's prune all left its own unused image: %v", r)
	}
	// The victim's own rmi and prune act on its image.
	if r, _ := victim.call(`"rmi"`, "rmi", `{"image":"app:1"}`); r["result"] == nil {
		t.Errorf("the victim's rmi of its own image: %v", r)
	}
	cmd := exec.Command("podman", "--url", svc.URI, "image", "exists", podmantest.BusyboxImage)
	if err := cmd.Run(); err != nil {
		t.Errorf("the shared base image is gone after the owners' prunes: %v", err)
	}
}

// A prewarmed container is made of the image its name had then. When the
// name moves to a new image (another worker of the same owner rebuilt
// it), the next run uses the new image, never a container of the old one.
func TestPrewarmedContainerOfAMovedTagIsNotUsed(t *testing.T) {
	svc := privateService(t)
	roots := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		os.MkdirAll(filepath.Join(roots, v), 0o755)
		os.WriteFile(filepath.Join(roots, v, "Dockerfile"), []byte("FROM "+podmantest.BusyboxImage+"\nCMD [\"echo\", \""+v+"\"]\n"), 0o644)
	}
	a := startWorker(t, "--socket", svc.URI, "--owner", "fn", "--build-roots", roots)
	b := startWorker(t, "--socket", svc.URI, "--owner", "fn", "--build-roots", roots)
	if r, _ := a.call(`"b1"`, "build", `{"context":"v1","tag":"fn:latest"}`); r["result"] == nil {
		t.Fatalf("build v1: %v", r)
	}
	if r, _ := a.call(`"warm"`, "prewarm", `{"image":"fn:latest","count":1}`); r["result"] == nil {
		t.Fatalf("prewarm: %v", r)
	}
	if r, _ := b.call(`"b2"`, "build", `{"context":"v2","tag":"fn:latest","force":true}`); r["result"] == nil {
		t.Fatalf("build v2 by the other worker: %v", r)
	}
	r, _ := a.call(`"run"`, "run", `{"image":"fn:latest"}`)
	if res := result(t, r); res["stdout"] != "v2\n" {
		t.Errorf("run after the tag moved printed %q; want v2 (the prewarmed v1 container must not be used)", res["stdout"])
	}
	r, _ = a.call(`"metrics"`, "metrics", "")
	if s := fmt.Sprint(r["result"]); !strings.Contains(s, "misses:1") {
		t.Logf("metrics after the moved tag: %s", s)
	}
}

// Nothing of a build stays on the host but the owner's image: after a
// build that succeeds, fails, times out, is cancelled, or sends more than
// --max-build-context (a 300 MB sparse Containerfile that the upload
// re-includes although .dockerignore leaves it out), the service's
// scratch folder holds no builder folder, /var/tmp gains nothing, the
// store holds no intermediate image, and once the image is removed the
// store is back to its size before the builds (du).
func TestBuildLeavesNothingBehind(t *testing.T) {
	svc := privateService(t)
	roots := t.TempDir()
	contexts := map[string]string{
		"ok":   "FROM " + podmantest.BusyboxImage + " AS stage\nRUN echo built > /x\nFROM " + podmantest.BusyboxImage + "\nCOPY --from=stage /x /x\n",
		"fail": "FROM " + podmantest.BusyboxImage + "\nRUN echo failing && exit 3\n",
		"slow": "FROM " + podmantest.BusyboxImage + "\nRUN echo started && sleep 600\n",
		"big":  "FROM " + podmantest.BusyboxImage + "\n",
	}
	for name, text := range contexts {
		os.MkdirAll(filepath.Join(roots, name), 0o755)
		os.WriteFile(filepath.Join(roots, name, "Dockerfile"), []byte(text), 0o644)
	}
	// Always sent, whatever .dockerignore says, so it must be counted.
	sparse, _ := os.Create(filepath.Join(roots, "big", "Containerfile"))
	sparse.Truncate(300 << 20)
	sparse.Close()
	os.WriteFile(filepath.Join(roots, "big", ".dockerignore"), []byte("Containerfile\n"), 0o644)

	du := func() int64 {
		out, err := exec.Command("du", "-sbx", filepath.Join(svc.Dir, "root")).Output()
		if err != nil {
			t.Fatalf("du: %v", err)
		}
		n, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
		return n
	}
	varTmp := func() map[string]bool {
		entries, _ := os.ReadDir("/var/tmp")
		m := map[string]bool{}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "buildah") || strings.HasPrefix(e.Name(), "libpod_builder") {
				m[e.Name()] = true
			}
		}
		return m
	}
	scratch := filepath.Join(svc.Dir, "scratch")
	checkClean := func(after string) {
		t.Helper()
		var left []os.DirEntry
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if left, _ = os.ReadDir(scratch); len(left) == 0 {
				break
			}
		}
		for _, e := range left {
			t.Errorf("after %s: %s is left in the service's scratch folder", after, e.Name())
		}
	}
	before, tmpBefore := du(), varTmp()
	w := startWorker(t, "--socket", svc.URI, "--build-roots", roots, "--max-build-context", "1m")

	if r, _ := w.call(`"ok"`, "build", `{"context":"ok","tag":"left:1"}`); r["result"] == nil {
		t.Fatalf("the build that succeeds: %v", r)
	}
	checkClean("a build that succeeded")
	if r, _ := w.call(`"fail"`, "build", `{"context":"fail","tag":"left:2"}`); r["error"] == nil {
		t.Fatalf("the failing build: %v", r)
	}
	checkClean("a build that failed")
	if r, _ := w.call(`"slow"`, "build", `{"context":"slow","tag":"left:3","timeout":2}`); r["error"] == nil {
		t.Fatalf("the build past its timeout: %v", r)
	}
	checkClean("a build that timed out")
	w.send(`{"jsonrpc":"2.0","id":"cancel","method":"build","params":{"context":"slow","tag":"left:4"}}`)
	for {
		line, ok := w.next(time.Minute)
		if !ok {
			t.Fatal("output ended during the build to cancel")
		}
		if strings.Contains(line, `"started"`) {
			w.send(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"cancel"}}`)
		}
		if strings.Contains(line, `"id":"cancel"`) {
			if !strings.Contains(line, "-32800") {
				t.Errorf("the cancelled build answered %s", line)
			}
			break
		}
	}
	checkClean("a cancelled build")
	r, _ := w.call(`"big"`, "build", `{"context":"big","tag":"left:5"}`)
	if msg, data := errorData(t, r); data["type"] != "Forbidden" || !strings.Contains(msg, "--max-build-context") {
		t.Errorf("a context with a 300 MB sparse Containerfile that .dockerignore names, under --max-build-context 1m: %q %v", msg, data)
	}
	checkClean("a build past --max-build-context")

	cmd := exec.Command("podman", "--url", svc.URI, "images", "--all", "--format", "{{.Repository}}:{{.Tag}} {{.Labels}}")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman images: %v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(string(out), "localhost/left:1") {
		t.Errorf("images in the store after the builds (podman images --all): %q; want the base image and left:1 only", lines)
	}
	if r, _ := w.call(`"rmi"`, "rmi", `{"image":"left:1"}`); r["result"] == nil {
		t.Errorf("rmi left:1: %v", r)
	}
	after := du()
	t.Logf("du -sbx of the service's storage: %d bytes before the builds, %d after them and the rmi", before, after)
	if after > before+2<<20 {
		t.Errorf("the service's storage grew by %d bytes over five builds and an rmi; want within 2 MiB of before", after-before)
	}
	for name := range varTmp() {
		if !tmpBefore[name] {
			t.Errorf("a build left /var/tmp/%s on the host", name)
		}
	}
}
