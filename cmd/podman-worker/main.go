// Command podman-worker is a long-lived co-process that drives Podman for
// a backend over newline-delimited JSON-RPC 2.0 on stdin and stdout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	// One processor unless GOMAXPROCS says otherwise. The worker relays:
	// a call is a few tens of microseconds of its own work around a wait
	// for Podman, handed between goroutines (reader, handler, the HTTP
	// transport's loops). With more processors each hand-off wakes another
	// thread, which cost ~60 µs per sequential ping on a 2-vCPU VM (ping
	// p50 342-360 µs with one, 405-409 µs with two). With 8 or 64 pings in
	// flight two made no clear difference there (README, Benchmarks).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
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
	stdin, restore := pollableStdin()
	code := run(ctx, process{args: os.Args[1:], getenv: os.Getenv, pid: os.Getpid(), stdin: stdin, stdout: protocol, stderr: os.Stderr})
	restore()
	// The protocol's descriptor stays open until the exit: in --http mode
	// nothing writes it, and once nothing referred to it the garbage
	// collector's finalizer closed it, which a supervisor reads as the
	// worker's stdout ending (the race detector's collections showed it).
	runtime.KeepAlive(protocol)
	os.Exit(code)
}

// pollableStdin returns stdin as a file the Go runtime polls. os.Stdin
// reads block a thread in read(2), and the goroutine a request starts then
// waits for the scheduler to take the processor back from that thread
// (~30 µs per call, measured with the ping benchmark). A pipe or socket in
// non-blocking mode parks the reader instead. The mode belongs to the open
// file, which the parent may share (a terminal), so restore puts it back.
func pollableStdin() (in *os.File, restore func()) {
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return os.Stdin, func() {}
	}
	if kind := st.Mode & syscall.S_IFMT; kind != syscall.S_IFIFO && kind != syscall.S_IFSOCK {
		return os.Stdin, func() {} // a regular file or a terminal: reads are fine as they are
	}
	if err := syscall.SetNonblock(0, true); err != nil {
		return os.Stdin, func() {}
	}
	// os.NewFile sees the non-blocking mode and registers the descriptor
	// with the poller. os.Stdin keeps the descriptor alive (a second
	// *os.File for fd 0 that the collector finalized would close it).
	return os.NewFile(0, "stdin"), func() { _ = syscall.SetNonblock(0, false) }
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
