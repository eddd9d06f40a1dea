package containerfile

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// workerLabels is the prefix of the labels the worker sets on what it
// builds (owner and the like); a Containerfile must not forge them.
const workerLabels = "io.podman-worker"

// label refuses the worker's own labels. Keys are read as Podman reads
// them (quotes and escapes removed) and compared without case; a key
// with a variable is refused, since its value is not known here.
func (c *checker) label(n *parser.Node) error {
	if err := c.flags(n, "LABEL", nil); err != nil {
		return err
	}
	for k := n.Next; k != nil; k = k.Next.Next.Next {
		if k.Next == nil || k.Next.Next == nil {
			return c.invalid(n, "LABEL takes key=value pairs")
		}
		if strings.Contains(k.Value, "$") {
			return c.forbidden(n, "LABEL %s is not allowed: write label keys without variables", k.Value)
		}
		key, _, err := c.lex.ProcessWord(k.Value, vars{})
		if err != nil {
			return c.invalid(n, "LABEL %s: %v", k.Value, err)
		}
		for _, s := range []string{key, k.Value, strings.Trim(k.Value, `"'`)} {
			if strings.HasPrefix(strings.ToLower(s), workerLabels) {
				return c.forbidden(n, "LABEL %s is not allowed: %s.* labels are set by the worker itself", k.Value, workerLabels)
			}
		}
	}
	return nil
}

// onbuild checks the instruction an ONBUILD carries by the same rules, as
// it will run in a later build that starts FROM this image.
func (c *checker) onbuild(n *parser.Node) error {
	if err := c.flags(n, "ONBUILD", nil); err != nil {
		return err
	}
	if n.Next == nil || len(n.Next.Children) == 0 {
		return c.invalid(n, "ONBUILD needs an instruction")
	}
	inner := n.Next.Children[0]
	inner.StartLine, inner.EndLine = n.StartLine, n.EndLine
	c.inOnbuild = true
	defer func() { c.inOnbuild = false }()
	return c.onbuildInner(inner, n)
}

// onbuildInner checks a trigger: the instruction inside an ONBUILD, or
// one of a base image's triggers. outer carries the line's heredocs and
// original text.
func (c *checker) onbuildInner(n, outer *parser.Node) error {
	switch cmd := strings.ToLower(n.Value); cmd {
	case "onbuild", "from", "maintainer":
		return c.invalid(n, "ONBUILD %s is not allowed", strings.ToUpper(cmd))
	}
	return c.common(n, outer)
}
