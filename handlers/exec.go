package handlers

import (
	"context"
	"regexp"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
)

// userPattern is what exec accepts as user: a name or id, optionally
// ":group". Anything else (spaces, shell characters) is refused up front.
var userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)

type execParams struct {
	Name    string      `json:"name" rpc:"required"`
	Command commandLine `json:"command" rpc:"required"`
	User    string      `json:"user"`
}

type execResult struct {
	ExitCode        int    `json:"exit_code"`
	Output          string `json:"output"`
	Success         bool   `json:"success"`
	OutputTruncated bool   `json:"output_truncated,omitempty"`
}

// exec runs a command in a running container and answers its exit code and
// output. A non-zero exit is a result, not an error: the caller asked to run
// it and learns how it went.
func (s *Service) exec(ctx context.Context, p execParams) (any, error) {
	if p.User != "" && !userPattern.MatchString(p.User) {
		return nil, fault.Param(fault.KindInvalidParams, "user", "\"user\" must be a user name or id, optionally with :group (e.g. \"1000\", \"bob:bob\")")
	}
	// One bounded writer for both streams keeps them interleaved as they
	// arrive, and one chatty command from growing the worker or the reply.
	id, err := s.podman(ctx).Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	out := podman.NewCapped(s.maxOutput)
	execAs, home := s.execUser(ctx, id, p.User)
	var env []string
	if home != "" {
		env = []string{"HOME=" + home}
	}
	code, err := s.podman(ctx).Exec(ctx, id, p.Command, execAs, env, out)
	if err != nil {
		switch e := fault.As(s.podman(ctx).Classify(err)); e.Kind {
		case fault.KindConflict:
			return nil, fault.Wrap(fault.KindConflict, err, "container %q is not running: start it before exec (%s)", p.Name, e.Message).With("container", p.Name)
		case fault.KindInvalidParams:
			if p.User != "" {
				bad := fault.Invalid("user", "%s", e.Message)
				bad.Err = err
				return nil, bad
			}
		}
		return nil, err
	}
	return execResult{ExitCode: code, Output: out.String(), Success: code == 0, OutputTruncated: out.Cut()}, nil
}
