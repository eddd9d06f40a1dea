package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPing measures a warm ping through the worker's stdio against the
// floor: the same /_ping on one keep-alive connection to the same socket,
// in the same run. The ratio is what matters; absolute times drift between
// machines. make bench runs it.
func BenchmarkPing(b *testing.B) {
	w := startWorker(b, "--socket", podman.URI)
	w.call("0", "ping", "") // connect and warm up

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", podman.Socket)
		},
		MaxIdleConnsPerHost: 1,
	}}
	direct := func() {
		resp, err := client.Get("http://d/v5.0.0/libpod/_ping")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("/_ping: %s", resp.Status)
		}
	}
	direct() // warm up the connection

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		direct()
	}
	floor := time.Since(start)

	start = time.Now()
	for i := 0; i < b.N; i++ {
		r, _ := w.call(fmt.Sprint(i+1), "ping", "")
		if r["result"] != "Pong" {
			b.Fatalf("ping %d: %v", i+1, r)
		}
	}
	worker := time.Since(start)
	b.StopTimer()

	n := float64(b.N)
	b.ReportMetric(float64(worker.Microseconds())/n, "worker-us/ping")
	b.ReportMetric(float64(floor.Microseconds())/n, "socket-us/ping")
	b.ReportMetric(worker.Seconds()/floor.Seconds(), "worker/socket")
	b.ReportMetric(0, "ns/op") // the two figures above replace it
}
