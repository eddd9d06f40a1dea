package handlers

import (
	"context"
	"io"
	"os"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits/containerfile"
)

// checkContainerfile reads the Containerfile once and checks it against
// the policy (limits/containerfile: what a build may use), and the images
// its FROM and COPY --from name against what the caller's owner may use.
// Podman reads the file again, through the bindings' upload: a copy of the
// checked bytes cannot be sent instead, because the bindings put a file
// from outside the context into the context itself, where COPY . would
// take it. Build roots are the operator's folders, which callers write
// before a build, not during it (operations.md says so).
func (s *Service) checkContainerfile(ctx context.Context, dir, path string, buildArgs map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return fault.Invalid("file", "cannot read the Containerfile: %v", err)
	}
	src, err := io.ReadAll(io.LimitReader(f, containerfile.MaxSize+1))
	f.Close()
	if err != nil {
		return fault.Invalid("file", "cannot read the Containerfile: %v", err)
	}
	refs, err := containerfile.Check(src, containerfile.Options{
		BuildArgs: buildArgs, ContextDir: dir, AllowContextBinds: s.policy.BuildContextMounts,
	})
	if err != nil {
		return err
	}
	client := s.podman(ctx)
	for _, ref := range refs {
		if _, err := client.ImageOf(ctx, ref.Ref); err != nil {
			if e := fault.As(err); e.Kind == fault.KindNotFound {
				return fault.Errorf(fault.KindNotFound, "Containerfile line %d: %s %s: %s", ref.Line, ref.Instruction, ref.Ref, e.Message).
					With("field", "file").With("line", ref.Line).With("image", ref.Ref)
			}
			return err
		}
	}
	return nil
}
