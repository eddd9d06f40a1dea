package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/errorhandling"

	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/rpc"
)

type runParams struct {
	Image      string      `json:"image" rpc:"required"`
	Name       string      `json:"name"`
	Entrypoint argv        `json:"entrypoint"`
	Command    commandLine `json:"command"`
	Env        keyValues   `json:"env"`
	Ports      []string    `json:"ports"`
	Volumes    []string    `json:"volumes"`
	Mounts     []string    `json:"mounts"`
	AutoRemove *bool       `json:"auto_remove"`
	Workdir    string      `json:"workdir"`
	User       string      `json:"user"`
	// Detach is accepted for the seed CLI's sake: run always waits for the
	// exit and returns the output; long-lived containers are create's job.
	Detach bool `json:"detach"`
	limits.Request
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
}

// run runs one function invocation to completion: create, start, wait,
// logs, remove, each explicit. Podman's own auto-remove races with wait and
// logs (the container can be gone before its output is read), so the
// worker removes the container itself, after reading the output and off
// the caller's path: the result does not wait for the removal, shutdown does.
func (s *Service) run(ctx context.Context, p runParams) (any, error) {
	res, err := s.policy.Resolve(p.Request, true)
	if err != nil {
		return nil, err
	}
	name, err := checkName("name", p.Name)
	if err != nil {
		return nil, err
	}
	g, err := s.specFor(containerConfig{
		Image: p.Image, Name: name, Command: p.Command, Entrypoint: p.Entrypoint, Env: p.Env,
		Ports: p.Ports, Volumes: p.Volumes, Mounts: p.Mounts, Workdir: p.Workdir, User: p.User, Resources: res,
	})
	if err != nil {
		return nil, err
	}
	autoRemove := p.AutoRemove == nil || *p.AutoRemove

	if err := s.owned.awaitRemoval(ctx, name); err != nil {
		return nil, err
	}
	begun := time.Now()
	created, err := containers.CreateWithSpec(ctx, g, nil)
	createdAt := time.Since(begun)
	if err != nil {
		return nil, err
	}
	id := created.ID
	s.owned.add(id, autoRemove)
	// Every way out of this function passes here: a failed start, a
	// timeout, a cancel and a normal exit all leave nothing behind.
	defer func() {
		if autoRemove {
			s.removeLater(id, name)
		} else {
			s.owned.forget(id)
		}
	}()

	deadline, cancel := context.WithTimeout(ctx, res.Timeout)
	defer cancel()
	stdout, stderr := &capped{max: s.maxOutput}, &capped{max: s.maxOutput}
	// Attaching makes Podman create the container's process (runc
	// create), so a command that cannot run fails here, or else at start.
	ended, err := s.attach(deadline, id, stdout, stderr)
	attachedAt := time.Since(begun)
	if err == nil {
		err = containers.Start(ctx, id, nil)
	}
	startedAt := time.Since(begun)
	if err != nil {
		if code, ok := unstartable(err); ok {
			// As `podman run` does: 127 for a command that does not
			// exist, 126 for one that cannot be executed.
			return nil, rpc.Wrap(rpc.KindExecutionFailed, err, "Container execution failed: %s", podmanCause(err)).
				With("exit_code", code).With("stdout", "").With("stderr", "").With("container_id", id)
		}
		return nil, err
	}
	state, err := s.awaitExit(deadline, id, ended)
	// Where a run's time goes, for --debug: Podman's steps or the wait.
	s.log.Debug().Str("container", id).Dur("create_ms", createdAt).Dur("attach_ms", attachedAt-createdAt).
		Dur("start_ms", startedAt-attachedAt).Dur("exit_ms", time.Since(begun)-startedAt).Msg("run steps")
	if err != nil {
		// Kill first, so the function stops now even though removal
		// happens later.
		s.kill(id)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case deadline.Err() != nil:
			return nil, rpc.Errorf(rpc.KindTimeout, "Container '%s' exceeded timeout of %ss and was killed", name, seconds(res.Timeout)).
				With("container_id", id).With("timeout", res.Timeout.Seconds())
		}
		return nil, err
	}

	result := runResult{
		ContainerID: id, Name: name, Status: "exited", ExitCode: state.ExitCode, Image: []string{p.Image},
		AutoRemove: autoRemove, Stdout: jsonOrText(stdout.String()), Stderr: stderr.String(), Truncated: truncated(stdout, stderr),
	}
	if state.ExitCode == 0 {
		return result, nil
	}
	e := rpc.Errorf(rpc.KindExecutionFailed, "Container execution failed").
		With("exit_code", state.ExitCode).With("stdout", result.Stdout).With("stderr", result.Stderr).With("container_id", id)
	if len(result.Truncated) > 0 {
		e.With("truncated", result.Truncated)
	}
	if oomKilled(state) {
		e.Message = fmt.Sprintf("Container execution failed: the function ran out of memory (memory limit %s) and was killed", limits.FormatBytes(res.Memory))
		e.With("oom_killed", true)
	}
	return nil, e
}

// attach connects to the container's output before it starts, so nothing
// it prints is missed and no log file is read afterwards. The returned
// channel closes when the output ends, which is the first sign that the
// process exited: measured here, ~1 ms after start returns for a process
// that exits at once, where Podman's wait endpoint answers 30-160 ms later
// because it must take the container's lock, which the cleanup process
// conmon starts holds for tens of milliseconds.
func (s *Service) attach(ctx context.Context, id string, stdout, stderr io.Writer) (<-chan struct{}, error) {
	// Attach swaps the transport of the connection it is given: it gets
	// a private copy, whose sockets also close when ctx ends.
	actx, release, err := attachConnection(ctx)
	if err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	ended := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(ended)
		defer release()
		err := containers.Attach(actx, id, nil, stdout, stderr, ready, new(containers.AttachOptions).WithStream(true))
		if err != nil {
			failed <- err
		}
	}()
	select {
	case <-ready:
		return ended, nil
	case err := <-failed:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// awaitExit waits for the end of the output, then for Podman to see the
// process gone, polling inspect (a few ms each) with a growing interval:
// the state usually settles within one or two polls, and a process that
// closed its output but goes on running is polled until its deadline.
func (s *Service) awaitExit(ctx context.Context, id string, ended <-chan struct{}) (*define.InspectContainerState, error) {
	select {
	case <-ended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	interval := 2 * time.Millisecond
	for {
		data, err := containers.Inspect(ctx, id, nil)
		if err != nil {
			return nil, err
		}
		if st := data.State; st != nil && (st.Status == "exited" || st.Status == "stopped") {
			return st, nil
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		interval = min(interval*2, 50*time.Millisecond)
	}
}

// oomKilled says whether the memory limit killed the process. Podman
// reports it where it sees the kernel's OOM event; on cgroup v1 hosts
// (Podman 4.3 here) it never does, so a death by SIGKILL (exit 137) that
// the worker did not send (a timeout or cancel returns before this) is
// taken for what it almost always is under a 20 MB limit.
func oomKilled(st *define.InspectContainerState) bool {
	return st.OOMKilled || st.ExitCode == 137
}

// unstartable reads the exit code `podman run` gives when the runtime could
// not start the command at all.
func unstartable(err error) (int, bool) {
	var model *errorhandling.ErrorModel
	if !errors.As(err, &model) {
		return 0, false
	}
	switch model.Because {
	case define.ErrOCIRuntimeNotFound.Error():
		return 127, true
	case define.ErrOCIRuntimePermissionDenied.Error():
		return 126, true
	}
	return 0, false
}

func podmanCause(err error) string {
	var model *errorhandling.ErrorModel
	if errors.As(err, &model) && model.Because != "" {
		return model.Because
	}
	return err.Error()
}

func truncated(stdout, stderr *capped) []string {
	var out []string
	if stdout.cut {
		out = append(out, "stdout")
	}
	if stderr.cut {
		out = append(out, "stderr")
	}
	return out
}

// kill sends SIGKILL regardless of the call's context (it may be the
// reason for the kill); a container that already exited is fine.
func (s *Service) kill(id string) {
	ctx, cancel := context.WithTimeout(s.podman.background(), 10*time.Second)
	defer cancel()
	if err := containers.Kill(ctx, id, new(containers.KillOptions).WithSignal("SIGKILL")); err != nil && !isGone(err) {
		s.log.Debug().Err(err).Str("container", id).Msg("kill")
	}
}

// removeLater removes a container in the background; Close waits for it.
// Until it is gone its name stays reserved (awaitRemoval), so a caller who
// reuses the name at once does not get a name conflict.
func (s *Service) removeLater(id, name string) {
	s.removals.Add(1)
	done := s.owned.removing(name)
	go func() {
		defer s.removals.Done()
		defer done()
		s.remove(id)
	}()
}

// remove deletes a container, and forgets it once Podman no longer has it.
// Podman refuses while the container is between states, for example while
// the cleanup process conmon starts after the exit still holds it
// ("container state improper"). That passes within moments, so such a
// refusal is tried again until the deadline. Only Podman's "no such
// container" counts as already removed (kill's text matching would take
// "container state improper" for gone and forget a container still there).
func (s *Service) remove(id string) {
	ctx, cancel := context.WithTimeout(s.podman.background(), 30*time.Second)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := containers.Remove(ctx, id, new(containers.RemoveOptions).WithForce(true).WithVolumes(true).WithTimeout(0))
		if err == nil {
			s.owned.forget(id)
			return
		}
		switch rpc.AsError(s.podman.fromPodman(err)).Kind {
		case rpc.KindNotFound:
			s.owned.forget(id)
			return
		case rpc.KindConflict:
			s.log.Debug().Err(err).Str("container", id).Dur("retry_in", wait).Msg("Podman refused the removal for now")
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
			}
		}
		s.log.Warn().Err(err).Str("container", id).Msg("could not remove a container; it stays listed as owned")
		return
	}
}

// Close kills and removes every auto-remove container the worker started
// that is still there, and waits for removals under way. The worker calls
// it on its way out, whatever the way.
func (s *Service) Close() {
	for _, id := range s.owned.autoRemove() {
		s.kill(id)
		s.removeLater(id, "")
	}
	s.removals.Wait()
}

// isGone says whether a kill failed because there was nothing to kill.
func isGone(err error) bool {
	var e *rpc.Error
	if errors.As(err, &e) {
		return e.Kind == rpc.KindNotFound
	}
	msg := err.Error()
	return strings.Contains(msg, "no such container") || strings.Contains(msg, "not running") ||
		strings.Contains(msg, "container state improper") || strings.Contains(msg, "is not running")
}

// owned tracks the containers this worker created and has not removed.
type ownedSet struct {
	mu  sync.Mutex
	ids map[string]bool // id -> auto-remove
	// pending holds the names of containers being removed, closed once gone.
	pending map[string]chan struct{}
}

// removing reserves name until the returned func is called.
func (o *ownedSet) removing(name string) func() {
	if name == "" {
		return func() {}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	o.pending[name] = ch
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.pending[name] == ch {
			delete(o.pending, name)
		}
		close(ch)
	}
}

// awaitRemoval waits until no container of this name is being removed.
func (o *ownedSet) awaitRemoval(ctx context.Context, name string) error {
	o.mu.Lock()
	ch := o.pending[name]
	o.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *ownedSet) add(id string, autoRemove bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ids == nil {
		o.ids = map[string]bool{}
	}
	o.ids[id] = autoRemove
}

func (o *ownedSet) forget(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.ids, id)
}

func (o *ownedSet) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ids)
}

func (o *ownedSet) autoRemove() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for id, auto := range o.ids {
		if auto {
			out = append(out, id)
		}
	}
	return out
}

// output is a container's logs, each stream bounded.
type output struct {
	stdout, stderr string
	truncated      []string
}

// readLogs reads both streams apart, keeping at most s.maxOutput bytes of
// each; tail > 0 keeps only the last lines.
func (s *Service) readLogs(ctx context.Context, id string, tail int) (output, error) {
	opts := new(containers.LogOptions).WithStdout(true).WithStderr(true)
	if tail > 0 {
		opts.WithTail(strconv.Itoa(tail))
	}
	stdoutCh, stderrCh := make(chan string, 64), make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		done <- containers.Logs(ctx, id, opts, stdoutCh, stderrCh)
	}()
	stdout, stderr := &capped{max: s.maxOutput}, &capped{max: s.maxOutput}
	for {
		select {
		case l := <-stdoutCh:
			stdout.add(l)
		case l := <-stderrCh:
			stderr.add(l)
		case err := <-done:
			// Frames sent before Logs returned are already buffered.
			for drained := false; !drained; {
				select {
				case l := <-stdoutCh:
					stdout.add(l)
				case l := <-stderrCh:
					stderr.add(l)
				default:
					drained = true
				}
			}
			return output{stdout: stdout.String(), stderr: stderr.String(), truncated: truncated(stdout, stderr)}, err
		}
	}
}

// capped keeps the first max bytes written and notes whether more came.
// It never fails a write, so the stream keeps draining past the cap.
type capped struct {
	mu  sync.Mutex
	buf strings.Builder
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return len(p), nil
	}
	b := p
	if room := c.max - c.buf.Len(); len(b) > room {
		b = b[:max(room, 0)]
		// Cut before a character the cap would split, so the kept text
		// stays valid UTF-8.
		for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					b = b[:i]
				}
				break
			}
		}
		c.cut = true
	}
	c.buf.Write(b)
	return len(p), nil
}

func (c *capped) add(s string) { c.Write([]byte(s)) }

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// jsonOrText returns the parsed value when a function printed JSON (they
// print {"statusCode":200,"body":...}), else the text as it is.
func jsonOrText(s string) any {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return s
	}
	var v any
	if err := json.Unmarshal([]byte(t), &v); err != nil {
		return s
	}
	return v
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
