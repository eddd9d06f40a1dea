package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/specgen"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
)

// reusable says whether a run that asks for reuse can have it: a run
// removed after it (a kept container is the caller's), without a name
// (an instance serves many runs under its own), on a read-only root (a
// writable one is host disk the runner cannot put back), with reuse on
// (--max-instances above 0) and a runner at hand. Otherwise the run is
// served cold, as the same params without reuse would be.
func (s *Service) reusable(ctx context.Context, autoRemove bool, name string) bool {
	if !autoRemove || name != "" || s.policy.WritableRoot || s.instances.opts.Max <= 0 {
		return false
	}
	_, err := s.instances.runner()
	return err == nil
}

// errServeCold is runReused's answer when no instance could be started:
// run serves the run cold instead.
var errServeCold = errors.New("no warm instance: serve the run cold")

// runReused serves a run from a warm instance of its spec: one idle, or
// one started now (start "cold"), or the next one freed when the ceiling
// is reached. The invocation behaves as a cold run of the same spec: the
// same result, errors and output caps. A timeout, a cancel, an OOM kill,
// a process killed by a signal or any fault of the instance discards it.
func (s *Service) runReused(ctx context.Context, p runParams, g *specgen.SpecGenerator, img *podman.Image, res limits.Resources, input []byte) (any, error) {
	client := s.podman(ctx)
	key := instanceKey(client, g)
	if s.instances.coldOnly(key) {
		return nil, errServeCold
	}
	inst, hit, err := s.instances.acquire(ctx, key, func(ctx context.Context) (*podman.Instance, error) {
		return s.startInstance(ctx, client, g, img)
	})
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return nil, err // the call ended, or the worker is closing
		}
		// No instance could be made for this spec (the runner could not
		// be copied or did not start: a full disk, a broken --runner,
		// an image it cannot run in): its runs are served cold for a
		// while, which answers what the spec itself gets wrong in a cold
		// run's words.
		s.instances.startFailed(key)
		s.log.Warn().Err(err).Dur("cold_for", noStartFor).Msg("no warm instance could be started: runs of this spec are served cold for a while")
		return nil, errServeCold
	}
	start := "cold"
	if hit {
		start = "reused"
	}
	s.countStart(start)
	out := podman.NewOutput(s.maxOutput)
	flush, stop := s.streamOutput(ctx, p.Stream, out)
	defer stop()
	deadline, cancel := context.WithTimeout(ctx, res.Timeout)
	defer cancel()
	begun := time.Now()
	st, err := inst.Invoke(deadline, input, out.Stdout, out.Stderr)
	flush()
	s.log.Debug().Str("container", inst.ID).Str("start", start).Dur("invoke_ms", time.Since(begun)).Msg("run steps")
	if err != nil {
		switch {
		case ctx.Err() != nil:
			s.instances.discard(inst, discardCancel)
			return nil, ctx.Err()
		case deadline.Err() != nil:
			s.instances.discard(inst, discardTimeout)
			return nil, timedOut(inst.Name, inst.ID, res.Timeout, start, out)
		}
		if oom, known := inst.OOMKills(); oom > 0 {
			// The memory limit killed the runner with the function: as
			// a cold run's container, an OOM-killed exit.
			s.instances.discard(inst, discardOOM)
			e := failedRun(runResult{ContainerID: inst.ID, ExitCode: 137, Stdout: stdoutValue(out),
				Stderr: out.Stderr.String(), Truncated: out.Truncated(), Start: start})
			describeKill(e, &define.InspectContainerState{ExitCode: 137}, podman.MemoryEvidence{Known: known, OOMKills: oom}, res.Memory)
			return nil, e
		}
		s.instances.discard(inst, discardFault)
		e := fault.Wrap(fault.KindPodman, err, "the warm instance failed: %v", err)
		if errors.Is(err, podman.ErrOutputLost) {
			// As a cold run whose output Podman lost: retryable.
			e.Message += "; run it again"
			// What arrived; no exit code: the function's end is unknown.
			withOutput(e.With("output_lost", true), runResult{ContainerID: inst.ID, Stdout: stdoutValue(out),
				Stderr: out.Stderr.String(), Truncated: out.Truncated(), Start: start})
		}
		return nil, e
	}
	oomKills, known := inst.OOMKills()
	switch {
	case oomKills > 0:
		s.instances.discard(inst, discardOOM)
	case st.Signal != 0:
		// Killed by a signal: perhaps the memory limit where the cgroup
		// cannot be read. Either way the instance is in doubt.
		s.instances.discard(inst, discardSignal)
	default:
		s.instances.release(key, inst)
	}

	if st.Error != "" {
		// The command could not start at all (127: not found, 126: not
		// executable), in the words a cold run gets from Podman.
		s.log.Debug().Str("container", inst.ID).Str("error", st.Error).Msg("the function's command could not start")
		why := define.ErrOCIRuntimeNotFound
		if st.Code == 126 {
			why = define.ErrOCIRuntimePermissionDenied
		}
		return nil, fault.Errorf(fault.KindExecutionFailed, "Container execution failed: %v", why).
			With("exit_code", st.Code).With("stdout", "").With("stderr", "").With("container_id", inst.ID).With("start", start)
	}
	result := runResult{
		ContainerID: inst.ID, Name: inst.Name, Status: "exited", ExitCode: int32(st.Code), Image: []string{p.Image},
		AutoRemove: true, Stdout: stdoutValue(out), Stderr: out.Stderr.String(), Truncated: out.Truncated(), Start: start,
	}
	if st.Code == 0 {
		return result, nil
	}
	e := failedRun(result)
	mem := podman.MemoryEvidence{Known: known, OOMKills: oomKills}
	if !known {
		mem.Why = "Podman is not on the worker's host, so the instance's memory cgroup is not visible to the worker"
	}
	describeKill(e, &define.InspectContainerState{ExitCode: int32(st.Code)}, mem, res.Memory)
	return nil, e
}
