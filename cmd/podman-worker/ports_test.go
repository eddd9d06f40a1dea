package main

import "testing"

// A port published on an IPv6 host address, written as podman run -p and
// the HTTP layer write it, reaches Podman and the container runs.
func TestIPv6PortPublishes(t *testing.T) {
	w := startWorker(t, "--socket", service.URI, "--port-addresses", "127.0.0.1,::1", "--network-modes", "none,bridge")
	r := mustCall(w, "1", "run", `{"image":"localhost/busybox:latest","command":"true","ports":["[::1]:0:80"],"network_mode":"bridge"}`)
	if res := result(t, r); res["exit_code"] != float64(0) {
		t.Errorf("a run publishing [::1]:0:80 on bridge: %v", r)
	}
}
