package podman

import (
	"context"
	"strconv"

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

// NewOutput returns an Output that keeps at most max bytes of each stream.
func NewOutput(max int) Output {
	return Output{Stdout: NewCapped(max), Stderr: NewCapped(max)}
}

// Logs reads a container's logs, both streams apart, keeping at most max
// bytes of each; tail > 0 keeps only the last lines.
func (c *Client) Logs(ctx context.Context, id string, tail, max int) (Output, error) {
	opts := new(containers.LogOptions).WithStdout(true).WithStderr(true)
	if tail > 0 {
		opts.WithTail(strconv.Itoa(tail))
	}
	stdoutCh, stderrCh := make(chan string, 64), make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		done <- containers.Logs(ctx, id, opts, stdoutCh, stderrCh)
	}()
	out := NewOutput(max)
	for {
		select {
		case l := <-stdoutCh:
			out.Stdout.WriteString(l)
		case l := <-stderrCh:
			out.Stderr.WriteString(l)
		case err := <-done:
			// Frames sent before Logs returned are already buffered.
			for drained := false; !drained; {
				select {
				case l := <-stdoutCh:
					out.Stdout.WriteString(l)
				case l := <-stderrCh:
					out.Stderr.WriteString(l)
				default:
					drained = true
				}
			}
			return out, err
		}
	}
}
