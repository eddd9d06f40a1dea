package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// startRegistry starts a private registry for the test. CI runs as root
// after `make deps`, which installs docker-registry: there a missing one
// fails the test; elsewhere it skips, saying what to install.
func startRegistry(t *testing.T, opts podmantest.RegistryOptions) *podmantest.Registry {
	t.Helper()
	if why := podmantest.HaveRegistry(); why != "" {
		if os.Geteuid() == 0 {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := podmantest.StartRegistry(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// result answers the call's result, failing the test on an error.
func regResult(t *testing.T, resp map[string]any) map[string]any {
	t.Helper()
	if resp["error"] != nil {
		t.Fatalf("error: %v", resp["error"])
	}
	m, _ := resp["result"].(map[string]any)
	return m
}

// errType answers the call's error type ("" when it succeeded).
func errType(resp map[string]any) string {
	e, _ := resp["error"].(map[string]any)
	if e == nil {
		return ""
	}
	d, _ := e["data"].(map[string]any)
	s, _ := d["type"].(string)
	return s
}

func wantErr(t *testing.T, what string, resp map[string]any, typ string) {
	t.Helper()
	if got := errType(resp); got != typ {
		t.Errorf("%s: error type %q, want %q (%v)", what, got, typ, resp)
	}
}

// buildApp builds an image of the owner's own from testdata/build/hello.
func buildApp(t *testing.T, w *worker, tag string) string {
	t.Helper()
	res := regResult(t, first(w.call(`"build"`, "build", fmt.Sprintf(`{"context":%q,"tag":%q}`, filepath.Join(testdataBuild(), "hello"), tag))))
	return res["image_id"].(string)
}

func first(resp map[string]any, _ []string) map[string]any { return resp }

// manifestDigest asks a plain HTTP registry for the digest it serves
// repo:tag's manifest as, as any client of the registry would see it.
func manifestDigest(t *testing.T, addr, repo, tag string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	d := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("HEAD %s: %s, digest %q", req.URL, resp.Status, d)
	}
	return d
}

// TestRegistryPlainPullPushAndOwnership pushes an owner's image to a plain
// HTTP registry (an insecure one), pulls it back, and checks, from a
// second owner's side, that a pulled image is its puller's only.
func TestRegistryPlainPullPushAndOwnership(t *testing.T) {
	reg := startRegistry(t, podmantest.RegistryOptions{})
	svc := privateService(t)
	closed := "127.0.0.1:1"
	args := []string{"--socket", svc.URI, "--build-roots", testdataBuild(), "--insecure-registries", reg.Addr + "," + closed, "--registries", "quay.io", "--request-timeout", "20s"}
	alice := startWorker(t, append(args, "--owner", "alice")...)
	bob := startWorker(t, append(args, "--owner", "bob")...)

	id := buildApp(t, alice, "app:v1")
	ref := reg.Addr + "/team/app:v1"
	resp, notes := alice.call("1", "push", fmt.Sprintf(`{"image":"app:v1","destination":%q}`, ref))
	push := regResult(t, resp)
	// Podman 5 reports the manifest's digest; for 4.3 the worker asks the
	// registry. Either way it is the digest the registry serves the tag as.
	if want := manifestDigest(t, reg.Addr, "team/app", "v1"); push["reference"] != ref || push["digest"] != want {
		t.Errorf("push answered %v; want reference %s and the registry's digest %s", push, ref, want)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], `"method":"image.progress"`) {
		t.Errorf("push sent no image.progress: %q", notes)
	}
	// Bob may not push alice's image, nor the operator's shared busybox.
	wantErr(t, "bob pushes alice's image", first(bob.call("2", "push", fmt.Sprintf(`{"image":"app:v1","destination":%q}`, ref))), "NotFound")
	wantErr(t, "push of a shared image", first(alice.call("3", "push", fmt.Sprintf(`{"image":"localhost/busybox:latest","destination":%q}`, reg.Addr+"/busybox:1"))), "Forbidden")

	// Alice's build goes; her pull brings the same id back, as hers.
	regResult(t, first(alice.call("4", "rmi", `{"image":"app:v1"}`)))
	resp, notes = alice.call("5", "pull", fmt.Sprintf(`{"image":%q}`, ref))
	pulled := regResult(t, resp)
	if pulled["image_id"] != id {
		t.Errorf("pulled %v, want the pushed id %s", pulled["image_id"], id)
	}
	if tags := fmt.Sprint(pulled["tags"]); tags != "["+ref+"]" {
		t.Errorf("pulled tags %s, want [%s]", tags, ref)
	}
	if len(notes) == 0 {
		t.Error("pull sent no image.progress")
	}
	list := regResult(t, map[string]any{"result": map[string]any{"l": first(alice.call("6", "images", ""))["result"]}})
	if s := fmt.Sprint(list); strings.Contains(s, "podman-worker-owned") || !strings.Contains(s, ref) {
		t.Errorf("alice's images: %s", s)
	}
	// Bob sees nothing of it, by name or id, and can do nothing with it.
	for _, c := range []struct{ method, params string }{
		{"inspect", fmt.Sprintf(`{"image":%q}`, ref)},
		{"inspect", fmt.Sprintf(`{"image":%q}`, id)},
		{"rmi", fmt.Sprintf(`{"image":%q}`, ref)},
		{"push", fmt.Sprintf(`{"image":%q}`, ref)},
		{"run", fmt.Sprintf(`{"image":%q,"command":["true"]}`, ref)},
		{"inspect", fmt.Sprintf(`{"image":"localhost/podman-worker-owned/%s:alice"}`, strings.TrimPrefix(id, "sha256:"))},
	} {
		wantErr(t, "bob "+c.method+" "+c.params, first(bob.call("7", c.method, c.params)), "NotFound")
	}
	if s := fmt.Sprint(first(bob.call("8", "images", ""))["result"]); strings.Contains(s, ref) {
		t.Errorf("bob lists alice's pull: %s", s)
	}
	// Bob's own pull gives him his claim; his rmi leaves alice's.
	if got := regResult(t, first(bob.call("9", "pull", fmt.Sprintf(`{"image":%q}`, ref)))); got["image_id"] != id {
		t.Errorf("bob pulled %v", got)
	}
	regResult(t, first(bob.call("10", "rmi", fmt.Sprintf(`{"image":%q}`, ref))))
	wantErr(t, "bob inspects after his rmi", first(bob.call("11", "inspect", fmt.Sprintf(`{"image":%q}`, ref))), "NotFound")
	if r := regResult(t, first(alice.call("12", "inspect", fmt.Sprintf(`{"image":%q}`, ref)))); r == nil {
		t.Error("alice lost her image to bob's rmi")
	}
	// run takes pull "missing".
	resp = first(bob.call("13", "run", fmt.Sprintf(`{"image":%q,"command":["echo","hi"],"pull":"missing"}`, ref)))
	if r := regResult(t, resp); !strings.Contains(fmt.Sprint(r["stdout"]), "hi") {
		t.Errorf("run with pull missing: %v", r)
	}
	wantErr(t, "pull never", first(alice.call("14", "run", fmt.Sprintf(`{"image":%q,"pull":"always"}`, reg.Addr+"/team/app:v2"))), "BadRequest")

	// The claim survives a worker restart: it is in Podman's store.
	alice2 := startWorker(t, append(args, "--owner", "alice")...)
	if r := regResult(t, first(alice2.call("15", "inspect", fmt.Sprintf(`{"image":%q}`, ref)))); r == nil {
		t.Error("a new worker of alice's does not see her pull")
	}

	// Errors.
	wantErr(t, "missing repository", first(alice.call("20", "pull", fmt.Sprintf(`{"image":%q}`, reg.Addr+"/nope:v1"))), "NotFound")
	wantErr(t, "missing tag", first(alice.call("21", "pull", fmt.Sprintf(`{"image":%q}`, reg.Addr+"/team/app:nope"))), "NotFound")
	wantErr(t, "registry not allowed", first(alice.call("22", "pull", `{"image":"docker.io/library/busybox:latest"}`)), "Forbidden")
	wantErr(t, "short name", first(alice.call("23", "pull", `{"image":"busybox"}`)), "Forbidden")
	wantErr(t, "tls_verify false on a secure registry", first(alice.call("24", "pull", `{"image":"quay.io/x/y:1","tls_verify":false}`)), "Forbidden")
	begun := time.Now()
	wantErr(t, "unreachable", first(alice.call("25", "pull", fmt.Sprintf(`{"image":%q}`, closed+"/x:1"))), "Unavailable")
	if d := time.Since(begun); d > 25*time.Second {
		t.Errorf("unreachable took %v", d)
	}
	wantErr(t, "claim name as destination", first(alice.call("26", "push", `{"image":"`+ref+`","destination":"localhost/podman-worker-owned/x:alice"}`)), "BadRequest")
	wantErr(t, "bad auth", first(alice.call("27", "pull", `{"image":"`+ref+`","auth":"s3cret-in-a-string"}`)), "BadRequest")
	if s := alice.stderr.String(); strings.Contains(s, "s3cret") {
		t.Error("the worker logged a credential")
	}
	if r := first(alice.call("28", "ping", "")); r["error"] != nil {
		t.Error("the worker stopped serving")
	}
}

// TestRegistryTLSAuthKeepsSecrets pulls and pushes through a TLS registry
// with htpasswd auth, and looks for the password wherever it must not be.
func TestRegistryTLSAuthKeepsSecrets(t *testing.T) {
	const user, pass = "regtester", "Pa55-w0rd-never-shown-7f3a"
	reg := startRegistry(t, podmantest.RegistryOptions{TLS: true, Username: user, Password: pass})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, err := podmantest.StartWithHome(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := podmantest.EnsureBusybox(ctx, svc.URI); err != nil {
		t.Fatal(err)
	}
	if err := reg.TrustCA(svc); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--socket", svc.URI, "--build-roots", testdataBuild(), "--registries", reg.Addr, "--log-level", "debug")
	buildApp(t, w, "app:v1")
	ref := reg.Addr + "/app:v1"
	auth := fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass)
	var replies []string
	keep := func(resp map[string]any, notes []string) map[string]any {
		b, _ := json.Marshal(resp)
		replies = append(replies, string(b))
		replies = append(replies, notes...)
		return resp
	}
	wantErr(t, "push without credentials", keep(w.call("1", "push", fmt.Sprintf(`{"image":"app:v1","destination":%q}`, ref))), "Unauthorized")
	wantErr(t, "push with a wrong password", keep(w.call("2", "push", fmt.Sprintf(`{"image":"app:v1","destination":%q,"auth":{"username":%q,"password":"wrong"}}`, ref, user))), "Unauthorized")
	push := regResult(t, keep(w.call("3", "push", fmt.Sprintf(`{"image":"app:v1","destination":%q,"auth":%s}`, ref, auth))))
	// The test's CA is trusted by the private service only (TrustCA), so
	// for Podman 4.3 the worker's own question to the registry fails its
	// TLS check and the digest is "": what a worker that cannot verify the
	// registry answers.
	if d := fmt.Sprint(push["digest"]); d != "" && !strings.HasPrefix(d, "sha256:") {
		t.Errorf("push: %v", push)
	}
	regResult(t, keep(w.call("4", "rmi", `{"image":"app:v1"}`)))
	wantErr(t, "pull without credentials", keep(w.call("5", "pull", fmt.Sprintf(`{"image":%q}`, ref))), "Unauthorized")
	regResult(t, keep(w.call("6", "pull", fmt.Sprintf(`{"image":%q,"auth":%s}`, ref, auth))))
	wantErr(t, "tls_verify false on a verified registry", keep(w.call("7", "pull", fmt.Sprintf(`{"image":%q,"tls_verify":false,"auth":%s}`, ref, auth))), "Forbidden")

	// Every process's argv, now and while it mattered (the calls above).
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), pass) {
			t.Errorf("%s holds the password: %q", p, b)
		}
	}
	if strings.Contains(strings.Join(replies, "\n"), pass) {
		t.Error("a reply or notification holds the password")
	}
	if strings.Contains(w.stderr.String(), pass) {
		t.Error("the worker's log holds the password")
	}
	events, err := exec.Command("podman", "--url", svc.URI, "events", "--stream=false", "--format", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("podman events: %v: %s", err, events)
	}
	if strings.Contains(string(events), pass) || !strings.Contains(string(events), "pull") {
		t.Errorf("podman events: password there, or no pull event: %.2000s", events)
	}
	if strings.Contains(reg.Log(), pass) {
		t.Error("the registry's log holds the password")
	}
}

// TestCopyImageBetweenServices copies an owner's image from one Podman
// service to another: same id and tags, the owner's on both sides, and
// the ceiling stops a copy with nothing loaded.
func TestCopyImageBetweenServices(t *testing.T) {
	one, two := privateService(t), privateService(t)
	args := []string{"--connection", "one=" + one.URI, "--connection", "two=" + two.URI, "--socket", one.URI, "--build-roots", testdataBuild()}
	w := startWorker(t, append(args, "--owner", "alice")...)
	id := buildApp(t, w, "app:v1")
	resp, notes := w.call("1", "copy_image", `{"image":"app:v1","from":"one","to":"two"}`)
	res := regResult(t, resp)
	if res["image_id"] != id || fmt.Sprint(res["tags"]) != "[localhost/app:v1]" {
		t.Errorf("copy answered %v, want %s [localhost/app:v1]", res, id)
	}
	if len(notes) == 0 {
		t.Error("copy sent no image.progress")
	}
	there := regResult(t, first(w.call("2", "inspect", `{"image":"app:v1","connection":"two"}`)))
	if there["Id"] != id {
		t.Errorf("on two: %v", there["Id"])
	}
	r := regResult(t, first(w.call("3", "run", `{"image":"app:v1","connection":"two","command":["cat","/ctx/keep.txt"]}`)))
	if r["exit_code"] != float64(0) {
		t.Errorf("run on two: %v", r)
	}
	bob := startWorker(t, append(args, "--owner", "bob")...)
	wantErr(t, "bob inspects alice's copy", first(bob.call("4", "inspect", `{"image":"app:v1","connection":"two"}`)), "NotFound")
	wantErr(t, "bob copies alice's image", first(bob.call("5", "copy_image", `{"image":"app:v1","from":"one","to":"two"}`)), "NotFound")
	wantErr(t, "same connection", first(w.call("6", "copy_image", `{"image":"app:v1","from":"one","to":"one"}`)), "BadRequest")
	wantErr(t, "unknown connection", first(w.call("7", "copy_image", `{"image":"app:v1","from":"one","to":"three"}`)), "BadRequest")

	// Past the ceiling, the copy stops and nothing is loaded.
	small := startWorker(t, append(args, "--owner", "carol", "--max-copy-bytes", "64k")...)
	id2 := buildApp(t, small, "big:v1")
	wantErr(t, "past --max-copy-bytes", first(small.call("8", "copy_image", `{"image":"big:v1","from":"one","to":"two"}`)), "Forbidden")
	out, _ := exec.Command("podman", "--url", two.URI, "images", "-a", "--format", "{{.ID}}", "--no-trunc").CombinedOutput()
	if strings.Contains(string(out), strings.TrimPrefix(id2, "sha256:")) {
		t.Errorf("the stopped copy left its image on two: %s", out)
	}
}

// copy_image to a host reached over SSH: the image streams from the local
// service through the worker's SSH connection into the remote one, with
// the same id and tags there, and runs there.
func TestCopyImageOverSSH(t *testing.T) {
	local, remote := privateService(t), startSSHHost(t)
	w := startWorker(t, "--socket", local.URI, "--build-roots", testdataBuild(),
		"--connection", "far="+remote.uri()+","+remote.sshd.Identity, "--known-hosts", remote.sshd.KnownHosts)
	id := buildApp(t, w, "app:ssh")
	res := regResult(t, first(w.call("1", "copy_image", `{"image":"app:ssh","from":"default","to":"far"}`)))
	if res["image_id"] != id || fmt.Sprint(res["tags"]) != "[localhost/app:ssh]" {
		t.Errorf("copy over ssh answered %v, want %s [localhost/app:ssh]", res, id)
	}
	out, err := exec.Command("podman", "--url", remote.svc.URI, "image", "inspect", "--format", "{{.Id}}", "localhost/app:ssh").CombinedOutput()
	if err != nil || "sha256:"+strings.TrimSpace(string(out)) != id && strings.TrimSpace(string(out)) != id {
		t.Errorf("on the remote service: %q %v, want %s", out, err, id)
	}
	r := regResult(t, first(w.call("2", "run", `{"image":"app:ssh","connection":"far","command":["cat","/ctx/keep.txt"]}`)))
	if r["exit_code"] != float64(0) {
		t.Errorf("run over ssh: %v", r)
	}
}
