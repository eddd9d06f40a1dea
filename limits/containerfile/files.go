package containerfile

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// add allows ADD of paths in the build context only. ADD of a URL or a git
// repository is fetched by Podman itself, in the host's network
// namespace, so it reaches services on the host's loopback.
func (c *checker) add(n, outer *parser.Node) error {
	if err := c.heredoc(n, outer); err != nil {
		return err
	}
	if err := c.flags(n, "ADD", map[string]bool{"chown": true, "chmod": true}); err != nil {
		return err
	}
	if err := c.flagValues(n, "ADD"); err != nil {
		return err
	}
	args := words(n)
	if len(args) < 2 {
		return c.invalid(n, "ADD needs a source and a destination")
	}
	for _, src := range args[:len(args)-1] {
		if fetched(src) {
			return c.forbidden(n, "ADD %s is not allowed: ADD of a URL or git source is fetched by Podman in the host's network; put the file in the build context, or fetch it in a RUN step", src)
		}
		got, reason, err := c.expand(src, c.vars())
		if err != nil {
			return c.invalid(n, "ADD %s: %v", src, err)
		}
		if reason != "" {
			return c.forbidden(n, "ADD %s is not allowed: %s, so the worker cannot tell what ADD would fetch; give ADD a literal path", src, reason)
		}
		if fetched(got) {
			return c.forbidden(n, "ADD %s is not allowed: it expands to %s, a URL or git source that Podman would fetch in the host's network; put the file in the build context", src, got)
		}
	}
	return nil
}

// fetched reports whether a builder could take src for something to
// fetch rather than a path in the context. It errs wide: every remote form
// has a colon (scheme://, git@host:repo, host:port), and buildkit also
// reads git@... and github.com/... as git.
func fetched(src string) bool {
	return strings.Contains(src, ":") || strings.HasPrefix(src, "git@") || strings.HasPrefix(strings.ToLower(src), "github.com/")
}

// copy allows COPY from the context or an earlier stage; any other --from
// is an external image and is returned for the worker to check.
func (c *checker) copy(n, outer *parser.Node) error {
	if err := c.heredoc(n, outer); err != nil {
		return err
	}
	if err := c.flags(n, "COPY", map[string]bool{"chown": true, "chmod": true, "from": true, "link": true}); err != nil {
		return err
	}
	if err := c.flagValues(n, "COPY"); err != nil {
		return err
	}
	for _, f := range n.Flags {
		name, from, _ := flagName(f)
		if name != "from" {
			continue
		}
		if strings.ContainsAny(from, "$\"'`\\") {
			return c.forbidden(n, "COPY --from=%s is not allowed: name the stage or image plainly; variables and quotes in --from are read differently by Podman 4 and 5", from)
		}
		if c.trigger > 0 || c.inOnbuild {
			return c.forbidden(n, "ONBUILD COPY --from is not allowed: it would read a stage or an image of a build the worker has not seen")
		}
		// The stages before this one; inside ONBUILD we returned above.
		earlier := len(c.stages) - 1
		if st, ok := c.stageIndex(from, earlier); ok {
			if st == nil {
				return c.forbidden(n, "COPY --from=%s is not allowed: a number names a stage, and no earlier stage has it; Podman 4 fails hard on it", from)
			}
			continue
		}
		if c.stage(from, earlier) != nil {
			continue
		}
		if err := c.image(n, from, "COPY --from"); err != nil {
			return err
		}
	}
	if len(words(n)) < 2 {
		return c.invalid(n, "COPY needs a source and a destination")
	}
	return nil
}

// flagValues checks the values of ADD's and COPY's flags: --link alone or
// with a boolean, the others with a value.
func (c *checker) flagValues(n *parser.Node, instr string) error {
	for _, f := range n.Flags {
		name, v, ok := flagName(f)
		if name == "link" {
			if ok && v != "true" && v != "false" {
				return c.invalid(n, "%s --link takes no value, or true or false", instr)
			}
			continue
		}
		if !ok || v == "" {
			return c.invalid(n, "%s --%s needs a value (--%s=...)", instr, name, name)
		}
	}
	return nil
}

// words are the arguments after the instruction and its flags.
func words(n *parser.Node) []string {
	var out []string
	for w := n.Next; w != nil; w = w.Next {
		out = append(out, w.Value)
	}
	return out
}
