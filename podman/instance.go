package podman

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/specgen"

	"github.com/podman-worker/podman-worker/runner"
)

// RunnerDir and RunnerPath are where an instance's runner lies in its root
// filesystem (read-only once the instance runs).
const (
	RunnerDir  = "/.podman-worker"
	RunnerPath = RunnerDir + "/runner"
)

// Instance is a warm instance: a container whose PID 1 is the runner,
// serving one invocation at a time over its attach stream (package runner).
type Instance struct {
	ID, Name string
	client   *Client
	stdin    *io.PipeWriter
	in       *runner.Writer
	ended    <-chan struct{}
	release  func()

	mu      sync.Mutex
	ready   chan struct{} // closed by the Ready frame the runner sends when it can take an invocation
	call    *invocation   // the invocation under way
	fault   string        // the runner's Fault, once it gave up
	broken  bool          // the stream carried something else than frames
	oomSeen int64         // OOM kills of the instance's cgroup counted so far
	diag    *Capped       // the runner's stderr
}

// invocation is one call's view of the stream.
type invocation struct {
	stdout, stderr io.Writer
	exit           chan runner.ExitStatus
}

// StartInstance creates a container from g with the runner as its
// entrypoint (runnerArgs, then "--", then the function's argv), copies
// the runner binary into it, attaches, starts it and waits for the
// runner's first Ready. ctx bounds the start; the instance lives until
// Close (or life ends).
func (c *Client) StartInstance(ctx, life context.Context, g *specgen.SpecGenerator, runnerBin []byte, runnerArgs, argv []string) (*Instance, error) {
	g.Entrypoint = []string{RunnerPath}
	g.Command = append(append(append([]string{}, runnerArgs...), "--"), argv...)
	yes := true
	g.Stdin = &yes
	created, err := containers.CreateWithSpec(ctx, g, nil)
	if err != nil {
		return nil, err
	}
	c.Owned.Add(created.ID, true)
	inst := &Instance{ID: created.ID, Name: g.Name, client: c, ready: make(chan struct{})}
	fail := func(err error) (*Instance, error) {
		inst.Close()
		return nil, err
	}
	if err := c.PutArchive(ctx, created.ID, "/", []ArchiveEntry{
		{Header: &tar.Header{Name: RunnerDir[1:] + "/", Typeflag: tar.TypeDir, Mode: 0o555}},
		{Header: &tar.Header{Name: RunnerPath[1:], Typeflag: tar.TypeReg, Mode: 0o555}, Data: runnerBin},
	}); err != nil {
		return fail(fmt.Errorf("copying the runner into the instance: %w", err))
	}
	lctx, cancel := context.WithCancel(mergedContext{Context: life, values: ctx})
	inst.release = cancel
	r, w := io.Pipe()
	inst.stdin, inst.in = w, runner.NewWriter(w)
	dec := runner.NewDecoder(inst.frame)
	// The runner's own stderr: what a crash of it printed, for the log.
	inst.diag = NewOutput(4 << 10).Stderr
	ended, err := c.Attach(lctx, created.ID, r, dec, inst.diag)
	if err != nil {
		return fail(err)
	}
	inst.ended = ended
	if err := containers.Start(ctx, created.ID, nil); err != nil {
		return fail(err)
	}
	if err := inst.awaitReady(ctx); err != nil {
		return fail(err)
	}
	return inst, nil
}

// frame handles one frame from the runner.
func (inst *Instance) frame(t byte, payload []byte) {
	if t == runner.Stdout || t == runner.Stderr {
		inst.output(t, payload)
		return
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	call := inst.call
	switch t {
	case runner.Ready:
		select {
		case <-inst.ready:
		default:
			close(inst.ready)
		}
	case runner.Exit:
		var st runner.ExitStatus
		if call == nil || json.Unmarshal(payload, &st) != nil {
			inst.broken = true
			return
		}
		inst.call = nil
		call.exit <- st
	case runner.Fault:
		inst.fault = string(payload)
	default:
		inst.broken = true
	}
}

// output hands an output frame to the invocation, outside the instance's
// lock: writing may stream a notification, which must not hold up
// Usable or OOMKills. Frames come one at a time from the stream's
// reader, the only goroutine that ends an invocation (Exit), so the call
// cannot change under the write.
func (inst *Instance) output(t byte, payload []byte) {
	inst.mu.Lock()
	call := inst.call
	if call == nil {
		inst.broken = true
	}
	inst.mu.Unlock()
	if call == nil {
		return
	}
	w := call.stdout
	if t == runner.Stderr {
		w = call.stderr
	}
	_, _ = w.Write(payload)
}

// awaitReady waits for the runner's Ready.
func (inst *Instance) awaitReady(ctx context.Context) error {
	select {
	case <-inst.ready:
		return nil
	case <-inst.ended:
		return inst.gone()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gone says why the instance's stream ended.
func (inst *Instance) gone() error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.fault != "" {
		return fmt.Errorf("the instance's runner gave up: %s", inst.fault)
	}
	if cause, lost := podmanFault(inst.diag); lost {
		return fmt.Errorf("%w (%s)", ErrOutputLost, cause)
	}
	if d := strings.TrimSpace(inst.diag.String()); d != "" {
		return fmt.Errorf("the instance's runner exited: %s", d)
	}
	return errors.New("the instance's runner exited")
}

// Usable says whether the instance can take an invocation now: its
// runner said Ready since the last one, and nothing went wrong.
func (inst *Instance) Usable() bool {
	select {
	case <-inst.ended:
		return false
	default:
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return !inst.broken && inst.fault == ""
}

// Invocation is the outcome of one Invoke.
type Invocation struct {
	Exit runner.ExitStatus
	// Ended closes once the exit status is known.
	Ended <-chan struct{}
}

// Invoke runs one invocation: input on the function's stdin, its output
// into stdout and stderr as it comes. It waits for the runner to be ready
// (it cleans up after the previous invocation), and returns when the
// function's exit status is known, or ctx ends (the caller then discards
// the instance: its state is not known).
func (inst *Instance) Invoke(ctx context.Context, input []byte, stdout, stderr io.Writer) (runner.ExitStatus, error) {
	if err := inst.awaitReady(ctx); err != nil {
		return runner.ExitStatus{}, err
	}
	call := &invocation{stdout: stdout, stderr: stderr, exit: make(chan runner.ExitStatus, 1)}
	inst.mu.Lock()
	inst.ready = make(chan struct{})
	inst.call = call
	inst.mu.Unlock()
	if err := inst.in.Write(runner.Start, nil); err != nil {
		return runner.ExitStatus{}, err
	}
	// The input goes in from its own goroutine, as a cold run's does: a
	// function may print before it reads, or never read at all.
	go func() {
		if len(input) > 0 {
			_ = inst.in.Write(runner.Input, input)
		}
		_ = inst.in.Write(runner.InputEnd, nil)
	}()
	select {
	case st := <-call.exit:
		return st, nil
	case <-inst.ended:
		return runner.ExitStatus{}, inst.gone()
	case <-ctx.Done():
		return runner.ExitStatus{}, ctx.Err()
	}
}

// OOMKills answers how many OOM kills the instance's memory cgroup
// counted since the last call, when it can be read (ok).
func (inst *Instance) OOMKills() (n int64, ok bool) {
	done := make(chan struct{})
	close(done)
	ev := inst.client.WatchMemory(inst.ID, done).Evidence()
	if !ev.Known {
		return 0, false
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	n, inst.oomSeen = ev.OOMKills-inst.oomSeen, ev.OOMKills
	return n, true
}

// Close ends the instance: its stream, and its container (removed in the
// background, as a run's is).
func (inst *Instance) Close() {
	if inst.stdin != nil {
		inst.stdin.Close() // the runner reads EOF and exits
	}
	if inst.release != nil {
		inst.release()
	}
	inst.client.Owned.Kill(inst.ID)
	inst.client.Owned.RemoveLater(inst.ID, inst.Name)
}
