package handlers

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/specgen"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/rpc"
)

// RunSpec is what makes a run's container: run's params, and prewarm's,
// which keeps containers of the same spec ready.
type RunSpec struct {
	Image      string      `json:"image" rpc:"required"`
	Entrypoint argv        `json:"entrypoint"`
	Command    commandLine `json:"command"`
	Env        keyValues   `json:"env"`
	Ports      []string    `json:"ports"`
	Volumes    []string    `json:"volumes"`
	Mounts     []string    `json:"mounts"`
	Workdir    string      `json:"workdir"`
	User       string      `json:"user"`
	// Pull is "never" (the default: local images only) or "missing"
	// (pull the image first when the caller has none of that name).
	Pull string `json:"pull"`
	limits.Request
}

type runParams struct {
	RunSpec
	Name       string `json:"name"`
	AutoRemove *bool  `json:"auto_remove"`
	// Detach is accepted for the seed CLI's sake: run always waits for the
	// exit and returns the output; long-lived containers are create's job.
	Detach bool `json:"detach"`
	// Input is the request, written to the function's stdin, which is
	// then closed (and closed at once without it).
	Input         *string `json:"input"`
	InputEncoding string  `json:"input_encoding"`
	// Stream sends the output as run.output notifications as it comes.
	Stream bool `json:"stream"`
	// Reuse serves the run from a warm instance of its spec (instances.go).
	Reuse bool `json:"reuse"`
}

type runResult struct {
	ContainerID string   `json:"container_id"`
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	ExitCode    int32    `json:"exit_code"`
	Image       []string `json:"image"`
	AutoRemove  bool     `json:"auto_remove"`
	Stdout      any      `json:"stdout"`
	Stderr      string   `json:"stderr"`
	// Truncated names the streams cut at the output cap.
	Truncated []string `json:"truncated,omitempty"`
	// Start says how the container was started: "cold" (made for this
	// run) or "prewarmed" (taken from a prewarm pool) or "reused" (served
	// by a warm instance).
	Start string `json:"start"`
}

// run runs one function invocation to completion: create, attach, start,
// wait, remove, each explicit. Podman's own auto-remove races with wait and
// logs (the container can be gone before its output is read), so the
// worker removes the container itself, after reading the output and off
// the caller's path: the result does not wait for the removal, shutdown does.
func (s *Service) run(ctx context.Context, p runParams) (any, error) {
	res, err := s.policy.Resolve(p.Request, true)
	if err != nil {
		return nil, err
	}
	input, err := s.decodeInput(p.Input, p.InputEncoding)
	if err != nil {
		return nil, err
	}
	name, err := checkName("name", p.Name)
	if err != nil {
		return nil, err
	}
	autoRemove := p.AutoRemove == nil || *p.AutoRemove
	if err := s.pullMissing(ctx, p.Pull, p.Image); err != nil {
		return nil, err
	}
	g, err := s.specFor(ctx, p.config(name, res, !autoRemove))
	var img *podman.Image
	if err == nil {
		img, err = s.pinImage(ctx, g)
	}
	if err != nil {
		return nil, err
	}
	if p.Reuse && s.reusable(ctx, autoRemove, p.Name) {
		if r, err := s.runReused(ctx, p, g, img, res, input); err != errServeCold {
			return r, err
		}
	}
	client := s.podman(ctx)
	owned := client.Owned

	if err := owned.AwaitRemoval(ctx, name); err != nil {
		return nil, err
	}
	begun := time.Now()
	c, warm, refill, err := s.prepareRun(ctx, client, g, p.Name, autoRemove, res)
	defer refill() // once this run is over
	if c == nil {
		return nil, err
	}
	id, name := c.ID, c.Name
	// Every way out of this function passes here: a failed start, a
	// timeout, a cancel and a normal exit all leave nothing behind.
	defer func() {
		c.Release()
		if autoRemove {
			owned.RemoveLater(id, name)
		} else {
			owned.Forget(id)
		}
	}()
	preparedAt := time.Since(begun)
	out, ended := c.Output, c.Ended
	start := "cold"
	if warm {
		start = "prewarmed"
	}
	s.countStart(start)
	flush, stop := s.streamOutput(ctx, p.Stream && err == nil, out)
	defer stop()
	if err == nil {
		go feedInput(c.Stdin, input)
	}
	var memory *podman.MemoryWatch
	deadline, cancel := context.WithTimeout(ctx, res.Timeout)
	defer cancel()
	if err == nil {
		memory = client.WatchMemory(id, ended)
		err = client.Start(ctx, id)
	}
	startedAt := time.Since(begun)
	if err != nil {
		if e := fault.As(client.Classify(err)); e.Kind == fault.KindExecutionFailed {
			// The command could not start at all (127: not found, 126:
			// not executable), as `podman run` reports it.
			return nil, e.With("stdout", "").With("stderr", "").With("container_id", id).With("start", start)
		}
		return nil, err
	}
	state, err := client.AwaitExit(deadline, id, ended)
	flush()
	// Where a run's time goes, for --debug: Podman's steps or the wait.
	s.log.Debug().Str("container", id).Bool("prewarmed", warm).Dur("prepare_ms", preparedAt).
		Dur("start_ms", startedAt-preparedAt).Dur("exit_ms", time.Since(begun)-startedAt).Msg("run steps")
	if err != nil {
		// Kill first, so the function stops now even though removal
		// happens later.
		owned.Kill(id)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case deadline.Err() != nil:
			// What the function printed before it was killed is often why
			// it ran long: give it back (capped, as for ExecutionFailed),
			// after a short wait for the attach stream to drain.
			select {
			case <-ended:
			case <-time.After(time.Second):
			}
			return nil, timedOut(name, id, res.Timeout, start, out)
		}
		return nil, err
	}

	result := runResult{
		ContainerID: id, Name: name, Status: "exited", ExitCode: state.ExitCode, Image: []string{p.Image},
		AutoRemove: autoRemove, Start: start,
	}
	return exited(result, out, state, memory, res.Memory)
}

// exited answers a run whose function ended by itself: its result, or
// ExecutionFailed for a non-zero exit, or PodmanError when Podman lost part
// of the output on the way.
func exited(r runResult, out podman.Output, state *define.InspectContainerState, memory *podman.MemoryWatch, limit int64) (any, error) {
	cause, lost := out.Lost() // first: it takes Podman's line out of stderr
	r.Stdout, r.Stderr, r.Truncated = stdoutValue(out), out.Stderr.String(), out.Truncated()
	if lost {
		return nil, outputLost(r, cause)
	}
	if r.ExitCode == 0 {
		return r, nil
	}
	e := failedRun(r)
	describeKill(e, state, memory.Evidence(), limit)
	return nil, e
}

// timedOut is the Timeout of a run killed at its timeout, with what the
// function printed before (capped, as for ExecutionFailed): often why it
// ran long.
func timedOut(name, id string, timeout time.Duration, start string, out podman.Output) *fault.Error {
	e := fault.Errorf(fault.KindTimeout, "Container '%s' exceeded timeout of %ss and was killed", name, seconds(timeout)).
		With("container_id", id).With("timeout", timeout.Seconds()).With("start", start).
		With("stdout", stdoutValue(out)).With("stderr", out.Stderr.String())
	if t := out.Truncated(); len(t) > 0 {
		e.With("truncated", t)
	}
	return e
}

// outputLost is the PodmanError of a run whose function ran to its end but
// whose output Podman lost on the way (podman.Output.Lost): a result made
// of what did arrive would be wrong, so none is made. The data holds the
// exit code and what arrived; output_lost says the run may be sent again.
func outputLost(r runResult, cause string) *fault.Error {
	e := fault.Errorf(fault.KindPodman, "Podman lost part of the output of container '%s' (%s): the function exited %d, but what it printed did not all arrive; run it again",
		r.Name, cause, r.ExitCode).
		With("output_lost", true)
	return withRun(e, r)
}

// failedRun is the ExecutionFailed of a run whose function exited
// non-zero, with its exit code and output.
func failedRun(r runResult) *fault.Error {
	return withRun(fault.Errorf(fault.KindExecutionFailed, "Container execution failed"), r)
}

// withRun adds what a run's error data carries of its result: the exit
// code, and withOutput's fields.
func withRun(e *fault.Error, r runResult) *fault.Error {
	return withOutput(e.With("exit_code", r.ExitCode), r)
}

// withOutput adds the output (and which stream was cut), the container and
// how it started: all a run's error data holds when its end is unknown.
func withOutput(e *fault.Error, r runResult) *fault.Error {
	e.With("stdout", r.Stdout).With("stderr", r.Stderr).With("container_id", r.ContainerID).With("start", r.Start)
	if len(r.Truncated) > 0 {
		e.With("truncated", r.Truncated)
	}
	return e
}

// prepareRun takes a prewarmed container of this exact spec, when a pool
// holds one (only for containers removed after the run: each serves one
// run), or else makes one, the cold way. Either way it is created and
// attached to (Podman has set its process up), not started. Making it is
// bounded by the request timeout, not the run's: the run's timeout counts
// from the container's start (a slow create on a loaded host is no reason
// to fail a 0.5 s function). refill is called once the run is over.
func (s *Service) prepareRun(ctx context.Context, client *podman.Client, g *specgen.SpecGenerator, name string, autoRemove bool, res limits.Resources) (c *podman.Prepared, warm bool, refill func(), err error) {
	refill = func() {}
	prepCtx, cancel := context.WithTimeout(ctx, max(s.timeout, res.Timeout))
	defer cancel()
	if autoRemove {
		c, refill, err = s.warm.take(ctx, client, g, name)
	}
	warm = c != nil
	switch {
	case c != nil || err != nil:
	case !autoRemove:
		// A kept run's container counts against --max-containers.
		err = s.withRoomForKept(ctx, func() (err error) {
			c, err = client.Prepare(prepCtx, ctx, g, autoRemove, s.maxOutput)
			return err
		})
	default:
		c, err = client.Prepare(prepCtx, ctx, g, autoRemove, s.maxOutput)
	}
	return c, warm, refill, err
}

// streamOutput sends out's streams as run.output notifications as they
// come, when on (the run's stream param): flush sends what is still
// buffered, stop ends the observing; both do nothing when off.
func (s *Service) streamOutput(ctx context.Context, on bool, out podman.Output) (flush, stop func()) {
	if !on {
		return func() {}, func() {}
	}
	send := notifier(rpc.CallFrom(ctx))
	var streams []*outputStream
	for _, w := range []struct {
		name string
		out  *podman.Capped
	}{{"stdout", out.Stdout}, {"stderr", out.Stderr}} {
		o := newOutputStream(send, w.name, s.maxOutput)
		w.out.Observe(o.write)
		streams = append(streams, o)
	}
	flush = func() {
		for _, o := range streams {
			o.flush()
		}
	}
	stop = func() {
		out.Stdout.Observe(nil)
		out.Stderr.Observe(nil)
	}
	return flush, stop
}

// decodeInput checks a run's input against --max-input-bytes before any
// container is made, and decodes it.
func (s *Service) decodeInput(in *string, encoding string) ([]byte, error) {
	if in == nil {
		if encoding != "" {
			return nil, fault.Param(fault.KindInvalidParams, "input_encoding", "\"input_encoding\" without \"input\"")
		}
		return nil, nil
	}
	data, err := decodeBytes(*in, encoding, "input", "input_encoding")
	if err != nil {
		return nil, err
	}
	if len(data) > s.maxInput {
		return nil, fault.Param(fault.KindForbidden, "input", "\"input\" is %d bytes, more than this worker's limit of %s (--max-input-bytes)", len(data), limits.FormatBytes(int64(s.maxInput)))
	}
	return data, nil
}

// feedInput writes a run's input to its stdin and closes it; a function
// that does not read its stdin leaves the write blocked until the run is
// over and Release ends it.
func feedInput(stdin *io.PipeWriter, input []byte) {
	if stdin == nil {
		return
	}
	if len(input) > 0 {
		if _, err := stdin.Write(input); err != nil {
			return
		}
	}
	stdin.Close()
}

// describeKill says whether the memory limit killed the function, only
// where Podman or the kernel confirms it: Podman's OOMKilled (which Podman
// 4.3 on cgroup v1 never sets), or the OOM kills the kernel counted in the
// container's memory cgroup. An exit status of 137 is also what `exit
// 137` or any SIGKILL gives, so where nothing confirms it the error says
// what is known and leaves oom_killed false. The worker's own kills (a
// timeout, a cancel) return before this.
func describeKill(e *fault.Error, st *define.InspectContainerState, mem podman.MemoryEvidence, limit int64) {
	switch {
	case st.OOMKilled || mem.OOMKills > 0:
		e.Message = fmt.Sprintf("Container execution failed: the function ran out of memory (memory limit %s) and was killed", limits.FormatBytes(limit))
		e.With("oom_killed", true)
	case st.ExitCode == 137 && !mem.Known:
		e.Message = fmt.Sprintf("Container execution failed: the process was killed by SIGKILL (exit status 137); "+
			"the memory limit (%s) is the likely cause, but no OOM kill could be confirmed: %s", limits.FormatBytes(limit), mem.Why)
		e.With("oom_killed", false).With("killed_by", "SIGKILL")
	}
	if mem.Known && mem.Peak > 0 && st.ExitCode == 137 {
		e.With("memory_peak", mem.Peak)
	}
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
