package handlers

import (
	"context"
	"time"

	"go.podman.io/common/pkg/signal"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
)

// The seed REST API's container operations, and the seed CLI's ps, kill
// and rm, over the same connection.

type createParams struct {
	Image       string      `json:"image" rpc:"required"`
	Name        string      `json:"name" rpc:"required"`
	Command     commandLine `json:"command"`
	Environment keyValues   `json:"environment"`
	Ports       []string    `json:"ports"`
	Volumes     []string    `json:"volumes"`
	User        string      `json:"user"`
	// Writable names further folders to get writable in-memory copies,
	// as /etc and /home do.
	Writable []string `json:"writable"`
	// Pull is "never" (the default) or "missing", as run's.
	Pull string `json:"pull"`
	limits.Request
}

type containerState struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// create creates and starts a long-lived container (the REST API's
// POST /containers). It gets the same locked-down defaults as run, but no
// timeout and no auto-removal.
func (s *Service) create(ctx context.Context, p createParams) (any, error) {
	res, err := s.policy.Resolve(p.Request, false)
	if err != nil {
		return nil, err
	}
	if _, err := checkName("name", p.Name); err != nil {
		return nil, err
	}
	if err := s.podman(ctx).Owned.AwaitRemoval(ctx, p.Name); err != nil {
		return nil, err
	}
	if err := s.pullMissing(ctx, p.Pull, p.Image); err != nil {
		return nil, err
	}
	g, err := s.specFor(ctx, containerConfig{
		Image: p.Image, Name: p.Name, Command: p.Command, Env: p.Environment,
		Ports: p.Ports, Volumes: p.Volumes, User: p.User, Resources: res, Kept: true, LongLived: true, Writable: p.Writable,
	})
	if err == nil {
		_, err = s.pinImage(ctx, g)
	}
	if err != nil {
		return nil, err
	}
	var id string
	err = s.withRoomForKept(ctx, func() error {
		id, err = s.podman(ctx).Create(ctx, g)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.podman(ctx).Owned.Add(id, false)
	if err := s.podman(ctx).Start(ctx, id); err != nil {
		// A container that cannot start is no use to the caller: do not
		// leave it behind under a name they may retry with.
		s.podman(ctx).Owned.Remove(id, false)
		return nil, err
	}
	return containerState{ID: id, Name: p.Name, Status: s.podman(ctx).StartedState(ctx, id)}, nil
}

// withRoomForKept makes a long-lived container with make, unless the
// owner holds --max-containers already. The count and the create go
// together, one at a time, so concurrent ones cannot pass the ceiling
// between them.
func (s *Service) withRoomForKept(ctx context.Context, make func() error) error {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if err := s.requireRoomForKept(ctx); err != nil {
		return err
	}
	return make()
}

// requireRoomForKept refuses a new long-lived container past
// --max-containers: each holds memory, processes and a log on the host
// until a caller removes it.
func (s *Service) requireRoomForKept(ctx context.Context) error {
	n, err := s.podman(ctx).KeptCount(ctx)
	if err != nil {
		return err
	}
	if n >= s.policy.MaxContainers {
		return fault.Errorf(fault.KindForbidden, "Forbidden: this owner holds %d long-lived containers, this worker's ceiling (--max-containers); remove one with rm first", n).With("max_containers", s.policy.MaxContainers)
	}
	return nil
}

type nameParams struct {
	Name string `json:"name" rpc:"required"`
}

type nameState struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

func (s *Service) start(ctx context.Context, p nameParams) (any, error) {
	id, err := s.podman(ctx).Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	wasRunning := s.podman(ctx).State(ctx, id) == "running"
	if err := s.podman(ctx).Start(ctx, id); err != nil {
		return nil, err
	}
	if !wasRunning {
		// Its in-memory folders are the image's again: what the worker
		// had written there is written again (state.go).
		if err := s.state.replay(ctx, s.podman(ctx), id); err != nil {
			return nil, err
		}
	}
	return nameState{Name: p.Name, Status: s.podman(ctx).State(ctx, id)}, nil
}

type stopParams struct {
	Name string `json:"name" rpc:"required"`
	// Timeout is how long the container gets after SIGTERM before SIGKILL.
	Timeout *uint `json:"timeout"`
}

func (s *Service) stop(ctx context.Context, p stopParams) (any, error) {
	id, err := s.podman(ctx).Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if err := s.podman(ctx).Stop(ctx, id, p.Timeout); err != nil {
		return nil, err
	}
	return nameState{Name: p.Name, Status: s.podman(ctx).State(ctx, id)}, nil
}

// MaxTailLines is the most lines logs asks Podman for: Podman allocates
// for tail lines up front, whatever the log holds.
const MaxTailLines = 10000

type logsParams struct {
	Name string `json:"name" rpc:"required"`
	Tail *int   `json:"tail"`
}

type logsResult struct {
	Logs      string   `json:"logs"`
	Stdout    string   `json:"stdout"`
	Stderr    string   `json:"stderr"`
	Truncated []string `json:"truncated,omitempty"`
}

// logs answers the REST API's {logs} (both streams, in the order they were
// written) plus each stream apart.
func (s *Service) logs(ctx context.Context, p logsParams) (any, error) {
	tail := 100
	if p.Tail != nil {
		if *p.Tail < 1 {
			return nil, fault.Param(fault.KindInvalidParams, "tail", `"tail" must be at least 1`)
		}
		if *p.Tail > MaxTailLines {
			// Podman sizes a buffer from tail before it reads a line: 4e9
			// ran the shared service out of memory, 5e8 left it 293 MB
			// bigger for good.
			return nil, fault.Param(fault.KindForbidden, "tail", `"tail": %d is above this worker's ceiling of %d lines`, *p.Tail, MaxTailLines)
		}
		tail = *p.Tail
	}
	id, err := s.podman(ctx).Lookup(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	out, err := s.podman(ctx).Logs(ctx, id, tail, s.maxOutput)
	if err != nil {
		return nil, err
	}
	res := logsResult{Logs: out.Combined.String(), Stdout: out.Stdout.String(), Stderr: out.Stderr.String(), Truncated: out.Truncated()}
	if out.Combined.Cut() {
		res.Truncated = append(res.Truncated, "logs")
	}
	return res, nil
}

type psParams struct {
	All bool `json:"all"`
}

// psEntry is the union of the seed CLI's ps entry and the REST API's list entry.
type psEntry struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Image    []string `json:"image"`
	Created  string   `json:"created"`
	ExitCode int32    `json:"exit_code"`
}

func (s *Service) ps(ctx context.Context, p psParams) (any, error) {
	list, err := s.podman(ctx).List(ctx, p.All)
	if err != nil {
		return nil, err
	}
	out := make([]psEntry, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		out = append(out, psEntry{
			ID: c.ID, Name: name, Status: podman.PublicState(c.State), Image: []string{c.Image},
			Created: c.Created.UTC().Format(time.RFC3339), ExitCode: c.ExitCode,
		})
	}
	return out, nil
}

type killParams struct {
	Container string `json:"container" rpc:"required"`
	Signal    string `json:"signal"`
}

type messageResult struct {
	ContainerID string `json:"container_id"`
	Message     string `json:"message"`
}

func (s *Service) kill(ctx context.Context, p killParams) (any, error) {
	sig := p.Signal
	if sig == "" {
		sig = "SIGKILL"
	}
	if err := checkSignal(sig); err != nil {
		return nil, err
	}
	id, err := s.podman(ctx).Lookup(ctx, p.Container)
	if err != nil {
		return nil, err
	}
	if err := s.podman(ctx).Signal(ctx, id, sig); err != nil {
		if s.podman(ctx).KindOf(err) == fault.KindConflict {
			return nil, fault.Wrap(fault.KindConflict, err, "container %q is not running: only running containers can be killed", p.Container)
		}
		return nil, err
	}
	return messageResult{ContainerID: p.Container, Message: "Container killed with signal " + sig}, nil
}

type rmParams struct {
	Container string `json:"container"`
	// Name is the REST API's spelling of container.
	Name  string `json:"name"`
	Force bool   `json:"force"`
}

type rmResult struct {
	ContainerID string `json:"container_id"`
	Name        string `json:"name"`
	Message     string `json:"message"`
	Removed     bool   `json:"removed"`
}

func (s *Service) rm(ctx context.Context, p rmParams) (any, error) {
	target := p.Container
	if target == "" {
		target = p.Name
	}
	if target == "" || (p.Container != "" && p.Name != "" && p.Container != p.Name) {
		return nil, fault.Param(fault.KindInvalidParams, "container", `give the container as "container" (or "name"), once`)
	}
	id, err := s.podman(ctx).Lookup(ctx, target)
	if err != nil {
		return nil, err
	}
	// The seed's --force kills at once, not after a 10 s stop timeout.
	removed, err := s.podman(ctx).RemoveContainer(ctx, id, p.Force)
	for _, r := range removed {
		s.podman(ctx).Owned.Forget(r)
	}
	if err != nil {
		return nil, err
	}
	s.state.forget(id)
	return rmResult{ContainerID: target, Name: target, Message: "Container deleted successfully", Removed: true}, nil
}

// checkSignal accepts what podman kill accepts: a name with or without
// SIG, or a number from 1 to 64, through Podman's own signal table.
func checkSignal(sig string) error {
	if n, err := signal.ParseSignal(sig); err != nil || n < 1 || n > 64 {
		return fault.Invalid("signal", "%q is not a signal such as SIGKILL, SIGTERM or 9", sig)
	}
	return nil
}
