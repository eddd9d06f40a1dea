package containerfile

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// runFlagWhy says why a RUN flag other than --mount is refused.
var runFlagWhy = map[string]string{
	"network":  "it would give the step a network the worker did not choose",
	"security": "--security=insecure runs the step with every capability",
	"device":   "it would put a host device in the build",
}

// run allows RUN with no flag but --mount, and only the mounts mount
// allows.
func (c *checker) run(n, outer *parser.Node) error {
	if err := c.heredoc(n, outer); err != nil {
		return err
	}
	for _, f := range n.Flags {
		name, val, ok := flagName(f)
		if name != "mount" {
			why, known := runFlagWhy[name]
			if !known {
				why = "the worker allows only --mount=type=tmpfs"
			}
			return c.forbidden(n, "RUN --%s is not allowed: %s", name, why)
		}
		if !ok || val == "" {
			return c.invalid(n, "RUN --mount needs a value, like --mount=type=tmpfs,target=/tmp")
		}
		if err := c.mount(n, val); err != nil {
			return err
		}
	}
	return nil
}

// heredoc refuses RUN, COPY and ADD lines with a heredoc. buildkit's
// parser (Podman 5) reads the lines after <<EOF as the heredoc's text;
// Podman 4's reads them as instructions, so a file could show this
// checker one program and Podman another. Any "<<" counts, even one the
// parser did not take for a heredoc (a JSON form, shell arithmetic):
// telling those apart is exactly where parsers differ.
func (c *checker) heredoc(n, outer *parser.Node) error {
	if len(outer.Heredocs) > 0 || strings.Contains(outer.Original, "<<") {
		return c.forbidden(n, "%s with a heredoc (<<) is not allowed: Podman 4's and Podman 5's parsers read heredocs differently, so one could run as instructions what the other takes as text; put the script in a file in the build context and COPY it",
			strings.ToUpper(n.Value))
	}
	return nil
}
