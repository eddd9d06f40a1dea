package containerfile

import (
	"errors"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/podman-worker/podman-worker/fault"
)

// parseError turns the parser's error into InvalidParams on "file", with
// the line when the parser knows it.
func parseError(err error) error {
	msg := shorten([]any{err.Error()})[0]
	e := fault.Param(fault.KindInvalidParams, "file", "Containerfile: %v", msg)
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		line := loc.Locations[0][0].Start.Line
		if line > 0 && errors.Unwrap(err) != nil {
			msg = shorten([]any{errors.Unwrap(err).Error()})[0]
			e = fault.Param(fault.KindInvalidParams, "file", "Containerfile line %d: %v", line, msg).With("line", line)
		}
	}
	return e
}

// forbidden makes the policy refusal for the instruction n.
func (c *checker) forbidden(n *parser.Node, format string, args ...any) *fault.Error {
	args = shorten(args)
	if c.trigger > 0 {
		return fault.Param(fault.KindForbidden, "file", "base image ONBUILD trigger %d: "+format, append([]any{c.trigger}, args...)...).With("trigger", c.trigger)
	}
	return fault.Param(fault.KindForbidden, "file", "Containerfile line %d: "+format, append([]any{n.StartLine}, args...)...).With("line", n.StartLine)
}

// invalid makes the error for an instruction that is malformed rather than
// outside the policy.
func (c *checker) invalid(n *parser.Node, format string, args ...any) *fault.Error {
	args = shorten(args)
	if c.trigger > 0 {
		return fault.Param(fault.KindInvalidParams, "file", "base image ONBUILD trigger %d: "+format, append([]any{c.trigger}, args...)...).With("trigger", c.trigger)
	}
	return fault.Param(fault.KindInvalidParams, "file", "Containerfile line %d: "+format, append([]any{n.StartLine}, args...)...).With("line", n.StartLine)
}

// shorten cuts the file's text quoted in a message to a readable length:
// a refusal names the offending word, it does not echo a megabyte back.
func shorten(args []any) []any {
	const limit = 120
	for i, a := range args {
		if s, ok := a.(string); ok && len(s) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			args[i] = s[:cut] + "..."
		}
	}
	return args
}
