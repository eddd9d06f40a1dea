package podman

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/specgen"
)

// Prepared is a container created and attached to, which makes Podman set
// its process up (runc create, conmon, cgroups, mounts: the bulk of a
// run's time): what is left for a run is to start it and read its output.
type Prepared struct {
	ID, Name string
	Output   Output
	// Ended closes when the container's output ends: the first sign
	// that its process exited.
	Ended <-chan struct{}
	// Stdin is the container's standard input, for a container made with
	// one (g.Stdin): what is written reaches the process, and Close
	// closes its stdin. The attach copies it from the start, so a
	// prewarmed container takes its run's input like a cold one.
	Stdin *io.PipeWriter
	// Made is when the container was created and attached to.
	Made    time.Time
	release func()
}

// Release ends the attach, if it has not ended by itself, and the input.
func (p *Prepared) Release() {
	if p.Stdin != nil {
		p.Stdin.CloseWithError(errReleased)
	}
	if p.release != nil {
		p.release()
	}
}

var errReleased = errors.New("the run is over")

// Prepare creates a container from g, owned by the worker (removed by
// Owned.Close at the latest when autoRemove), and attaches to its output,
// keeping at most maxOutput bytes of each stream. ctx bounds the create
// and the attach; the attach itself, and so the container's output, lives
// until life ends or Release. The Prepared is returned, with the
// container's id, whenever the container was created, even when attaching
// failed (a command that cannot run fails there): the caller removes it.
func (c *Client) Prepare(ctx, life context.Context, g *specgen.SpecGenerator, autoRemove bool, maxOutput int) (*Prepared, error) {
	created, err := containers.CreateWithSpec(ctx, g, nil)
	if err != nil {
		return nil, err
	}
	c.Owned.Add(created.ID, autoRemove)
	p := &Prepared{ID: created.ID, Name: g.Name, Output: NewOutput(maxOutput), Made: time.Now()}
	lctx, cancel := context.WithCancel(mergedContext{Context: life, values: ctx})
	p.release = cancel
	var stdin io.Reader
	if g.Stdin != nil && *g.Stdin {
		var r *io.PipeReader
		r, p.Stdin = io.Pipe()
		stdin = r
	}
	ended, err := c.Attach(lctx, p.ID, stdin, p.Output.Stdout, p.Output.Stderr)
	if err != nil {
		cancel()
		return p, err
	}
	p.Ended = ended
	return p, nil
}
