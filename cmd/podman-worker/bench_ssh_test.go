package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/podman-worker/podman-worker/podman/podmantest"
)

// sshBench is one worker with two connections to the same private service:
// "unix", its socket, and "ssh", the same socket through a private sshd on
// 127.0.0.1. The difference between them is what SSH costs a call, with
// the network itself taken out (a remote host adds its round trip).
type sshBench struct {
	w    *leanWorker
	sshd *podmantest.SSHD
}

func startSSHBench(b *testing.B) *sshBench {
	b.Helper()
	sshd := podmantest.SSHDFor(b)
	w := startLean(b, workerBin, "--socket", service.URI, "--connection", "unix="+service.URI,
		"--connection", "ssh="+sshd.URI(service.Socket), "--identity", sshd.Identity, "--known-hosts", sshd.KnownHosts)
	return &sshBench{w: w, sshd: sshd}
}

// BenchmarkPingOverSSH measures a warm ping through the worker over SSH
// against the same ping over the unix socket, and, for the part SSH itself
// takes, the bare /_ping on one keep-alive connection over each. The four
// alternate in blocks, so that drift hits them alike. Both worker calls
// name their connection, so both decode the same params.
func BenchmarkPingOverSSH(b *testing.B) {
	s := startSSHBench(b)
	call := func(conn string) func() {
		line := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"connection":"` + conn + `"}}` + "\n")
		return func() {
			if r := s.w.roundTrip(line); !bytes.Contains(r, []byte(`"result":"Pong"`)) {
				b.Fatalf("ping over %s: %s", conn, r)
			}
		}
	}
	viaUnix, viaSSH := call("unix"), call("ssh")
	direct := socketClient(service.Socket, 1)
	directSSH := sshSocketClient(b, s.sshd, service.Socket)
	contenders := []func(){viaUnix, viaSSH, func() { direct("/_ping") }, func() { directSSH("/_ping") }}
	for _, f := range contenders {
		f() // warm up: connections made
	}

	b.ResetTimer()
	times := make([][]time.Duration, len(contenders))
	for done := 0; done < b.N; {
		block := min(250, b.N-done)
		for i, f := range contenders {
			for j := 0; j < block; j++ {
				times[i] = append(times[i], timed(f))
			}
		}
		done += block
	}
	b.StopTimer()

	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	p50 := func(i int) time.Duration { return percentile(times[i], 50) }
	for i, name := range []string{"worker-unix", "worker-ssh", "socket-unix", "socket-ssh"} {
		b.ReportMetric(us(p50(i)), name+"-p50-us")
		b.ReportMetric(us(percentile(times[i], 99)), name+"-p99-us")
	}
	b.ReportMetric(p50(1).Seconds()/p50(0).Seconds(), "ssh/unix")
	b.ReportMetric(p50(3).Seconds()/p50(2).Seconds(), "socket-ssh/unix")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRunOverSSH measures one function invocation (as BenchmarkRun's)
// through the worker over SSH against the same over the unix socket,
// alternating call by call. A run makes several requests, attach among
// them, which opens a connection (an SSH channel) of its own.
func BenchmarkRunOverSSH(b *testing.B) {
	s := startSSHBench(b)
	call := func(conn string) func() {
		line := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":"run","params":{"image":"localhost/busybox:latest","command":["echo","{\"statusCode\":200}"],"memory":"20m","cpus":0.5,"network_mode":"none","connection":%q}}`+"\n", conn)
		return func() {
			if r := s.w.roundTrip(line); !bytes.Contains(r, []byte(`"result"`)) {
				b.Fatalf("run over %s: %s", conn, r)
			}
		}
	}
	viaUnix, viaSSH := call("unix"), call("ssh")
	viaUnix() // warm up
	viaSSH()

	b.ResetTimer()
	var tu, ts []time.Duration
	for i := 0; i < b.N; i++ {
		tu = append(tu, timed(viaUnix))
		ts = append(ts, timed(viaSSH))
	}
	b.StopTimer()
	reportLatency(b, "unix", tu)
	reportLatency(b, "ssh", ts)
	b.ReportMetric(percentile(ts, 50).Seconds()/percentile(tu, 50).Seconds(), "ssh/unix")
	b.ReportMetric(0, "ns/op")
}

// sshSocketClient is socketClient over SSH: one SSH connection, and GETs on
// one keep-alive channel to the remote socket.
func sshSocketClient(b *testing.B, sshd *podmantest.SSHD, socket string) func(path string) {
	key, err := os.ReadFile(sshd.Identity)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	check, err := knownhosts.New(sshd.KnownHosts)
	if err != nil {
		b.Fatal(err)
	}
	client, err := ssh.Dial("tcp", sshd.Addr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: check})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close() })
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return client.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 1,
	}}
	return func(path string) {
		resp, err := hc.Get("http://d/v5.0.0/libpod" + path)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s over ssh: %s", path, resp.Status)
		}
	}
}
