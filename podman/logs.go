package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// Output is a container's output, each stream bounded.
type Output struct {
	Stdout, Stderr *Capped
}

// Truncated names the streams that were cut at their cap.
func (o Output) Truncated() []string {
	var out []string
	if o.Stdout.Cut() {
		out = append(out, "stdout")
	}
	if o.Stderr.Cut() {
		out = append(out, "stderr")
	}
	return out
}

// attachFault is the line Podman writes as the last frame of a run's
// stderr when its own link to the container's output (conmon's attach
// socket) fails after the attach began, as "Error: read unixpacket
// @->/proc/self/fd/13/attach: read: connection reset by peer". Seen once in
// 500 runs with 8 in flight on a loaded 2-core machine (Podman 4.3.1,
// TestFiveHundredRuns): the function ran to its end, but what it printed
// after the reset, and what the kernel still held when the reset came,
// never reached the worker.
var attachFault = regexp.MustCompile(`^Error: (read|write) unixpacket \S*/attach: [^\n]*\n$`)

// ErrOutputLost is an instance's end when Podman lost its link to the
// runner's stream (attachFault): the runner may still be running, but
// nothing more of it can be read.
var ErrOutputLost = errors.New("Podman lost its link to the instance's output")

// Lost returns Podman's error when Podman lost part of the container's
// output (attachFault), and takes that line out of Stderr, which holds only
// what the function printed. Read it once the output has ended. A function
// that prints the very same line as its last write is taken at its word:
// its own run is reported as one whose output was lost.
func (o Output) Lost() (string, bool) { return podmanFault(o.Stderr) }

// podmanFault takes Podman's attachFault line out of c when it is c's last
// write, and answers its cause (the line less "Error: " and the newline).
func podmanFault(c *Capped) (string, bool) {
	line, ok := c.takeLast(attachFault.Match)
	return strings.TrimSuffix(strings.TrimPrefix(line, "Error: "), "\n"), ok
}

// NewOutput returns an Output that keeps at most max bytes of each stream.
func NewOutput(max int) Output {
	return Output{Stdout: NewCapped(max), Stderr: NewCapped(max)}
}

// Logs is a container's log: each stream apart, and both together in the
// order the lines were written.
type Logs struct {
	Output
	Combined *Capped
}

// Logs reads a container's logs, keeping at most max bytes of each stream
// and of the combined text; tail > 0 keeps only the last lines. Podman
// sends both streams on one connection in the order they were logged; the
// bindings' Logs splits them into two channels, which loses that order, so
// the frames are read here, one after the other.
func (c *Client) Logs(ctx context.Context, id string, tail, max int) (Logs, error) {
	out := Logs{Output: NewOutput(max), Combined: NewCapped(max)}
	conn, err := bindings.GetClient(ctx)
	if err != nil {
		return out, err
	}
	params := url.Values{}
	params.Set("stdout", "true")
	params.Set("stderr", "true")
	if tail > 0 {
		params.Set("tail", strconv.Itoa(tail))
	}
	resp, err := conn.DoRequest(ctx, nil, http.MethodGet, "/containers/%s/logs", params, nil, id)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if !resp.IsSuccess() && !resp.IsInformational() {
		return out, resp.Process(nil)
	}
	buf := make([]byte, 1024)
	for {
		fd, n, err := containers.DemuxHeader(resp.Body, buf)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		frame, err := containers.DemuxFrame(resp.Body, buf, n)
		if err != nil {
			return out, err
		}
		switch fd {
		case 0, 1:
			out.Stdout.Write(frame)
		case 2:
			out.Stderr.Write(frame)
		case 3:
			return out, errors.New("from service in stream: " + string(frame))
		default:
			return out, fmt.Errorf("unrecognized stream %d in the logs", fd)
		}
		out.Combined.Write(frame)
	}
}
