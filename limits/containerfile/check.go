package containerfile

import (
	"bytes"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/podman-worker/podman-worker/fault"
)

// MaxSize is the largest Containerfile Check reads. The caller reads at
// most MaxSize+1 bytes, so a larger file is refused without being held.
const MaxSize = 1 << 20

// Options are what the operator has opened and what the build call supplies.
type Options struct {
	// BuildArgs are the caller's build_args; they override ARG defaults.
	BuildArgs map[string]string
	// ContextDir is the build context on the host (absolute), for the
	// bind-mount checks.
	ContextDir string
	// AllowContextBinds is the operator's --build-context-mounts: RUN
	// --mount=type=bind of paths inside the build context, read-only.
	AllowContextBinds bool
}

// Image is an external image the build would read.
type Image struct {
	Ref         string // as the build would use it, after ARG expansion
	Line        int    // 1-based line of the instruction
	Instruction string // "FROM" or "COPY --from"
}

// Check parses src and returns the external images it names (after ARG
// expansion), or a *fault.Error naming the line, the instruction and the
// operator flag (if any) that would open it.
func Check(src []byte, opts Options) ([]Image, error) {
	if len(src) > MaxSize {
		return nil, fault.Param(fault.KindForbidden, "file", "the Containerfile is larger than %d bytes; keep build steps in a script in the context and RUN it", MaxSize)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, parseError(err)
	}
	c := newChecker(opts, res.EscapeToken)
	for _, n := range res.AST.Children {
		if err := c.instruction(n); err != nil {
			return nil, err
		}
	}
	if len(c.stages) == 0 {
		return nil, fault.Param(fault.KindInvalidParams, "file", "Containerfile: no FROM instruction; a build starts with FROM <image> or FROM scratch")
	}
	if line := sameLines(src, res); line > 0 {
		return nil, fault.Param(fault.KindForbidden, "file", "Containerfile line %d: Podman 4 and Podman 5 would cut the file into different instructions here; put any # escape= on the first line, and do not end a line with an escaped escape character or a lone carriage return", line).With("line", line)
	}
	return c.images, nil
}

// CheckTriggers checks the ONBUILD triggers of a base image by the same
// rules as ONBUILD instructions in a Containerfile: they run in the
// caller's build as if written there. Each trigger must be one
// instruction on one line; a newline would let one trigger carry several.
func CheckTriggers(triggers []string, opts Options) error {
	for i, t := range triggers {
		if len(t) > MaxSize || strings.ContainsAny(t, "\r\n") {
			return fault.Param(fault.KindForbidden, "file", "base image ONBUILD trigger %d is not a single line of at most %d bytes; rebuild the base image without it", i+1, MaxSize).With("trigger", i+1)
		}
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return fault.Param(fault.KindForbidden, "file", "base image ONBUILD trigger %d does not parse: %v", i+1, shorten([]any{err.Error()})[0]).With("trigger", i+1)
		}
		c := newChecker(opts, res.EscapeToken)
		c.trigger = i + 1
		for _, n := range res.AST.Children {
			if err := c.onbuildInner(n, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// stage is one FROM ... section: its name and the variables an ADD
// source may use.
type stage struct {
	name     string
	vars     vars
	external bool // built FROM an external image, whose ENV we do not know
}

type checker struct {
	opts    Options
	lex     *shell.Lex
	meta    vars // ARGs before the first FROM, with BuildArgs applied
	stages  []stage
	names   map[string]int // stage names, lower-cased, to their index
	images  []Image
	trigger int // >0: checking a base image's ONBUILD trigger of that number
	// inOnbuild is set while the instruction inside an ONBUILD is read:
	// it runs in a downstream build, with none of this file's stages or
	// variables.
	inOnbuild bool
}

func newChecker(opts Options, escape rune) *checker {
	return &checker{opts: opts, lex: shell.NewLex(escape), meta: vars{}, names: map[string]int{}}
}

// cur is the stage being read; nil before the first FROM.
func (c *checker) cur() *stage {
	if len(c.stages) == 0 {
		return nil
	}
	return &c.stages[len(c.stages)-1]
}

// instruction checks one top-level instruction of the Containerfile.
func (c *checker) instruction(n *parser.Node) error {
	cmd := strings.ToLower(n.Value)
	if c.cur() == nil && cmd != "arg" && cmd != "from" {
		if _, ok := known[cmd]; !ok {
			return c.invalid(n, "unknown instruction %s", strings.ToUpper(n.Value))
		}
		return c.invalid(n, "%s before the first FROM; only ARG may come before it", strings.ToUpper(cmd))
	}
	switch cmd {
	case "from":
		return c.from(n)
	case "arg":
		if c.cur() == nil {
			return c.arg(n, c.meta, false)
		}
		return c.arg(n, c.cur().vars, c.cur().external)
	case "onbuild":
		return c.onbuild(n)
	}
	return c.common(n, n)
}

// common checks the instructions allowed both in a stage and inside
// ONBUILD; outer is the line's node (ONBUILD's own, for a trigger), which
// carries the heredocs and the original text.
func (c *checker) common(n, outer *parser.Node) error {
	cmd := strings.ToLower(n.Value)
	switch cmd {
	case "run":
		return c.run(n, outer)
	case "add":
		return c.add(n, outer)
	case "copy":
		return c.copy(n, outer)
	case "env":
		return c.env(n)
	case "label":
		return c.label(n)
	case "healthcheck":
		return c.flags(n, "HEALTHCHECK", healthcheckFlags)
	case "arg":
		// Only inside ONBUILD: the downstream build's ARGs are not ours.
		return c.flags(n, "ARG", nil)
	}
	if _, ok := known[cmd]; !ok {
		return c.invalid(n, "unknown instruction %s", strings.ToUpper(n.Value))
	}
	return c.flags(n, strings.ToUpper(cmd), nil)
}

// known are the instructions Podman 4 and 5 both read. Anything else is
// refused: buildkit's parser passes unknown words through, and an
// instruction one builder ignores and the other runs is a differential.
var known = map[string]struct{}{
	"from": {}, "run": {}, "cmd": {}, "label": {}, "maintainer": {}, "expose": {},
	"env": {}, "add": {}, "copy": {}, "entrypoint": {}, "volume": {}, "user": {},
	"workdir": {}, "arg": {}, "onbuild": {}, "stopsignal": {}, "healthcheck": {},
	"shell": {},
}

// healthcheckFlags only shape the image's HEALTHCHECK; nothing runs at
// build time.
var healthcheckFlags = map[string]bool{"interval": true, "timeout": true, "start-period": true, "start-interval": true, "retries": true}

// flags refuses every flag of n whose name is not in allowed, and returns
// nil if all are allowed.
// A flag given twice is refused too: builders disagree on which one wins.
func (c *checker) flags(n *parser.Node, instr string, allowed map[string]bool) error {
	seen := map[string]bool{}
	for _, f := range n.Flags {
		name, _, _ := flagName(f)
		if !allowed[name] {
			return c.forbidden(n, "%s --%s is not allowed: the worker allows only the flags it has checked", instr, name)
		}
		if seen[name] {
			return c.forbidden(n, "%s --%s is not allowed twice: builders disagree on which one wins", instr, name)
		}
		seen[name] = true
	}
	return nil
}

// flagName splits "--name=value" into name and value; ok is false when
// there is no "=". Names are compared as written: buildkit's flag parser
// is case-sensitive, so --MOUNT is no flag of ours and is refused.
func flagName(f string) (name, value string, ok bool) {
	return strings.Cut(strings.TrimPrefix(f, "--"), "=")
}
