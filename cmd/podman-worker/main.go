// Command podman-worker is a long-lived co-process that drives Podman for
// a backend over newline-delimited JSON-RPC 2.0 on stdin and stdout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	protocol, err := reserveStdout()
	if err != nil {
		fmt.Fprintf(os.Stderr, "podman-worker: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		// After the first signal, the default behaviour returns: a second
		// SIGTERM or SIGINT ends the process even if a call ignores its
		// cancellation.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, protocol, os.Stderr))
}

// reserveStdout keeps the real stdout for the protocol alone. It moves the
// protocol to a private descriptor and points descriptor 1 and os.Stdout at
// stderr, so a dependency that prints (the bindings write build output and
// progress bars to os.Stdout unless told otherwise) can never corrupt the
// protocol stream.
func reserveStdout() (*os.File, error) {
	fd, err := syscall.Dup(int(os.Stdout.Fd()))
	if err != nil {
		return nil, fmt.Errorf("duplicating stdout: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup3(int(os.Stderr.Fd()), 1, 0); err != nil {
		return nil, fmt.Errorf("pointing fd 1 at stderr: %w", err)
	}
	os.Stdout = os.Stderr
	return os.NewFile(uintptr(fd), "protocol"), nil
}
