package podman

import (
	"context"
	"errors"
	"io"
	"time"

	apihandlers "github.com/containers/podman/v5/pkg/api/handlers"
	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/podman-worker/podman-worker/fault"
)

// Exec runs argv in a running container as user ("" for the container's
// own), writes both output streams to out as they arrive, and answers the
// exit code, with env added to the container's environment. There is no
// stdin and no TTY: the output is multiplexed and ends when the command
// exits. The session is removed afterwards.
func (c *Client) Exec(ctx context.Context, container string, argv []string, user string, env []string, out io.Writer) (int, error) {
	cfg := new(apihandlers.ExecCreateConfig)
	cfg.Cmd = argv
	cfg.User = user
	cfg.Env = env
	cfg.AttachStdout, cfg.AttachStderr = true, true
	id, err := containers.ExecCreate(ctx, container, cfg)
	if err != nil {
		return 0, err
	}
	defer c.removeExec(ctx, id)

	actx, release, err := privateConnection(ctx)
	if err != nil {
		return 0, err
	}
	// Explicit streams and AttachInput false: otherwise the bindings look
	// at the worker's own stdin/stdout, and stdout is the protocol.
	opts := new(containers.ExecStartAndAttachOptions).
		WithOutputStream(out).WithErrorStream(out).
		WithAttachOutput(true).WithAttachError(true).WithAttachInput(false)
	err = containers.ExecStartAndAttach(actx, id, opts)
	release()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, err
	}
	return execExitCode(ctx, id)
}

// execExitCode reads the exit code of a finished session. Podman may record
// it a moment after the attach stream ends, so a session still marked
// running is asked again briefly.
func execExitCode(ctx context.Context, id string) (int, error) {
	for i := 0; ; i++ {
		info, err := containers.ExecInspect(ctx, id, nil)
		if err != nil {
			return 0, err
		}
		if !info.Running {
			return info.ExitCode, nil
		}
		if i == 100 {
			return 0, fault.Errorf(fault.KindPodman, "exec session %s still runs 2s after its output ended; no exit code", id)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeExec drops the exec session at once on Podman 4.8+, where a
// cancelled call forces removal, which also kills the command. Older
// services have no such endpoint (the bindings refuse the call): 4.3.1
// drops finished sessions by itself about five minutes after they exit, and
// a cancelled command keeps running in the container until it ends.
func (c *Client) removeExec(ctx context.Context, id string) {
	force := ctx.Err() != nil
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := containers.ExecRemove(rctx, id, new(containers.ExecRemoveOptions).WithForce(force))
	var old *bindings.APIVersionError
	if err != nil && !errors.As(err, &old) {
		c.log.Debug().Err(err).Str("exec_id", id).Msg("removing exec session")
	}
}
