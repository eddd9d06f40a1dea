package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// A created container's writable folders are memory: a function that
// writes 8 MiB into each of /etc, /home and a folder named in "writable"
// adds nothing to the host's disk (du -sbx of the service's storage, run
// root and logs), and the writes count against its memory limit: past it,
// a write fails inside the container, not on the host.
func TestStateFoldersCostNoHostDisk(t *testing.T) {
	svc := privateService(t)
	w := startWorker(t, "--socket", svc.URI)
	du := func() int64 {
		out, err := exec.Command("du", "-sbx", svc.Dir).Output()
		if err != nil {
			t.Fatalf("du: %v", err)
		}
		n, _ := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
		return n
	}
	r, _ := w.call(`"c"`, "create", fmt.Sprintf(`{"image":%q,"name":"state-disk","command":"sleep 300","memory":"64m","writable":["/srv/app"]}`, podmantest.BusyboxImage))
	result(t, r)
	before := du()
	r, _ = w.call(`"w"`, "exec", `{"name":"state-disk","command":"for d in /etc /home /srv/app; do dd if=/dev/zero of=$d/blob bs=1M count=8 2>/dev/null || echo failed $d; done; du -sk /etc/blob /home/blob /srv/app/blob | cut -f1"}`)
	if out := fmt.Sprint(result(t, r)["output"]); out != "8192\n8192\n8192\n" {
		t.Errorf("8 MiB into each writable folder: %q", out)
	}
	after := du()
	t.Logf("du -sbx of the service's folder: %d bytes before, %d after 24 MiB written into /etc, /home and /srv/app", before, after)
	if after-before > 1<<20 {
		t.Errorf("the host's disk grew by %d bytes while a container wrote 24 MiB into its in-memory folders", after-before)
	}
	// Past the memory limit (64m: 24 MiB already in tmpfs), writing fails
	// inside the container.
	r, _ = w.call(`"more"`, "exec", `{"name":"state-disk","command":"dd if=/dev/zero of=/home/more bs=1M count=80 2>&1 | tail -1; echo rc=$?"}`)
	if out := fmt.Sprint(r); !strings.Contains(out, "No space left") && !strings.Contains(out, "exit_code:137") && !strings.Contains(out, "Killed") {
		t.Errorf("80 MiB more into /home under a 64m limit: %s; want the write to fail in the container", out)
	}
	if after2 := du(); after2-before > 1<<20 {
		t.Errorf("the host's disk grew by %d bytes after writes past the memory limit", after2-before)
	}
	w.call(`"rm"`, "rm", `{"container":"state-disk","force":true}`)
}

// Named volumes, once the operator allows them, belong to owners: the
// worker creates a volume with its owner's label; another owner naming
// it, or anyone naming a volume made by hand, gets NotFound and never its
// files. The owner's own next function does see them (that is what a
// volume is for).
func TestNamedVolumesBelongToOwners(t *testing.T) {
	svc := privateService(t)
	cmd := exec.Command("podman", "--url", svc.URI, "volume", "create", "handmade")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman volume create: %v %s", err, out)
	}
	a := startWorker(t, "--socket", svc.URI, "--owner", "tenant-a", "--allow-named-volumes")
	b := startWorker(t, "--socket", svc.URI, "--owner", "tenant-b", "--allow-named-volumes")
	run := func(w *worker, volume, script string) map[string]any {
		r, _ := w.call(`"r"`, "run", runParams(fmt.Sprintf(`"volumes":[%q]`, volume+":/data"), "/bin/sh", "-c", script))
		return r
	}
	if r := run(a, "cache", "echo tenant-a-secret > /data/f; cat /data/f"); fmt.Sprint(result(t, r)["stdout"]) != "tenant-a-secret\n" {
		t.Fatalf("tenant a's run with cache:/data: %v", r)
	}
	for _, tt := range []struct {
		w    *worker
		who  string
		name string
	}{{b, "tenant b", "cache"}, {a, "tenant a", "handmade"}, {b, "tenant b", "handmade"}} {
		r := run(tt.w, tt.name, "cat /data/f")
		if msg, data := errorData(t, r); data["type"] != "NotFound" || !strings.Contains(msg, "no such volume") || strings.Contains(fmt.Sprint(r), "secret") {
			t.Errorf("%s named volume %q: %q %v; want NotFound and nothing of its files", tt.who, tt.name, msg, data)
		}
	}
	if r := run(a, "cache", "cat /data/f"); fmt.Sprint(result(t, r)["stdout"]) != "tenant-a-secret\n" {
		t.Errorf("tenant a's next run with its own volume: %v", r)
	}
	out, _ := exec.Command("podman", "--url", svc.URI, "volume", "inspect", "cache", "--format", "{{index .Labels \"io.podman-worker.owner\"}}").CombinedOutput()
	if strings.TrimSpace(string(out)) != "tenant-a" {
		t.Errorf("the volume's owner label: %q", out)
	}
}
