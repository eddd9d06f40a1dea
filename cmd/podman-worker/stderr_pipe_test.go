package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// A worker whose stderr is a pipe nobody reads: once the pipe's 64 KiB
// are full, every call that logged used to block on the log's lock. At
// debug level (a line per call, warnings for the failing ones) 3000
// calls are all answered, and promptly.
func TestCallsAreAnsweredWhileStderrIsAnUnreadPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // never read: closed only when the test ends
	defer w.Close()
	const calls = 3000
	var in strings.Builder
	for i := 1; i <= calls; i++ {
		// No Podman behind the socket: each call fails and logs a warning.
		fmt.Fprintf(&in, `{"jsonrpc":"2.0","id":%d,"method":"ps","params":{"all":true}}`+"\n", i)
	}
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), process{
			args: []string{"--socket", "unix:///nonexistent/podman.sock", "--debug"}, getenv: func(string) string { return "" },
			pid: os.Getpid(), stdin: strings.NewReader(in.String()), stdout: outW, stderr: w,
		})
		outW.Close()
	}()
	answered := 0
	start := time.Now()
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"id":`) {
			answered++
		}
		if time.Since(start) > 60*time.Second {
			break
		}
	}
	if answered < calls || time.Since(start) > 60*time.Second {
		t.Errorf("%d of %d calls answered in %v with stderr an unread pipe; want all, promptly", answered, calls, time.Since(start))
	}
	select {
	case code := <-done:
		t.Logf("%d calls answered in %v; the worker exited %d", answered, time.Since(start), code)
	case <-time.After(10 * time.Second):
		t.Error("the worker did not exit within 10 s of its input's end with stderr an unread pipe")
	}
}
