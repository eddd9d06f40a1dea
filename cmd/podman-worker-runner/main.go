// Command podman-worker-runner is the program a warm instance runs as its
// PID 1 (see package runner). It is built static (CGO_ENABLED=0), so it
// runs in any image, one FROM scratch included, and the worker copies it
// into each instance it starts.
package main

import (
	"os"

	"github.com/podman-worker/podman-worker/runner"
)

func main() {
	os.Exit(runner.Main(os.Args[1:], os.Stdin, os.Stdout))
}
