package containerfile

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// value is what the checker knows of one ARG or ENV variable.
type value struct {
	val string
	env bool // set by ENV: carried into stages built FROM this one
	// doubt says why Podman might see another value than val ("" when it
	// cannot): a value built from an unset variable, or an ARG that an
	// ENV (ours or the base image's) may override.
	doubt string
}

// vars are a stage's variables; they implement shell.EnvGetter.
type vars map[string]value

func (v vars) Get(name string) (string, bool) {
	x, ok := v[name]
	return x.val, ok
}

func (v vars) Keys() []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expand expands word with vs as the lexer does for Podman. reason is
// non-empty when the result cannot be trusted to be what Podman sees: a
// variable the file does not set (Podman may have a value for it) or one
// whose value is in doubt.
func (c *checker) expand(word string, vs vars) (result, reason string, err error) {
	res, err := c.lex.ProcessWordWithMatches(word, vs)
	if err != nil {
		return "", "", err
	}
	for _, name := range sortedKeys(res.Unmatched) {
		return res.Result, fmt.Sprintf("$%s is not set by an earlier ARG or ENV of this stage", name), nil
	}
	for _, name := range sortedKeys(res.Matched) {
		if d := vs[name].doubt; d != "" {
			return res.Result, fmt.Sprintf("$%s %s", name, d), nil
		}
	}
	return res.Result, "", nil
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// from starts a stage. Its image is expanded with the ARGs declared before
// the first FROM (BuildArgs override their defaults) and is either an
// earlier stage, scratch, or an external image that is returned.
//
// Any variable outside that set is refused, not taken as empty: Podman 4's
// imagebuilder also lets into FROM a build arg declared by an ARG anywhere
// in the file, and its own platform arguments, where buildkit sees none.
func (c *checker) from(n *parser.Node) error {
	if err := c.flags(n, "FROM", map[string]bool{"platform": true}); err != nil {
		return err
	}
	var words []string
	for w := n.Next; w != nil; w = w.Next {
		words = append(words, w.Value)
	}
	if len(words) != 1 && (len(words) != 3 || !strings.EqualFold(words[1], "as")) {
		return c.invalid(n, "FROM takes an image and an optional AS <name>")
	}
	ref, reason, err := c.expand(words[0], c.meta)
	if err != nil {
		return c.invalid(n, "FROM %s: %v", words[0], err)
	}
	if reason != "" {
		return c.forbidden(n, "FROM %s is not allowed: %s; declare it with ARG before the first FROM and pass it in build_args", words[0], reason)
	}
	if strings.Contains(ref, "$") {
		return c.forbidden(n, "FROM %s is not allowed: %q still holds a $ after expansion; name the image plainly", words[0], ref)
	}
	st := stage{vars: vars{}}
	if len(words) == 3 {
		if !stageName(words[2]) {
			return c.invalid(n, "FROM ... AS %q: a stage name is letters, digits, '-', '_' and '.', starting with a letter", words[2])
		}
		if _, dup := c.names[strings.ToLower(words[2])]; dup {
			return c.invalid(n, "stage name %q is used twice", words[2])
		}
		st.name = words[2]
	}
	switch base := c.stage(ref, len(c.stages)); {
	case base != nil:
		st.external = base.external // the image's ENV is still underneath
		for k, v := range base.vars {
			if v.env {
				st.vars[k] = v
			}
		}
	case ref == "scratch":
	case ref == "":
		return c.invalid(n, "FROM %s names no image after expansion", words[0])
	default:
		if err := c.image(n, ref, "FROM"); err != nil {
			return err
		}
		st.external = true
	}
	if st.name != "" {
		c.names[strings.ToLower(st.name)] = len(c.stages)
	}
	c.stages = append(c.stages, st)
	return nil
}

// stage returns the earlier stage ref names, by name as written, or nil.
// A name that differs only in case is not matched: it is returned as an
// image, so the worker sees it whatever Podman makes of it. FROM never
// names a stage by number; COPY --from does, see stageIndex.
// Only the first upto stages count: a stage cannot read itself.
func (c *checker) stage(ref string, upto int) *stage {
	if i, ok := c.names[strings.ToLower(ref)]; ok && i < upto && c.stages[i].name == ref {
		return &c.stages[i]
	}
	return nil
}

// stageIndex reads ref as a stage number, as COPY --from allows. ok is
// false when ref is no number; st is nil when it is one but not of an
// earlier stage (of the first upto), or not written plainly. buildah 1.28
// reads any number strconv.Atoi takes ("01", "+1") and indexes its stages
// with it unchecked, so a number that is not an earlier stage is refused,
// never passed on as an image name.
func (c *checker) stageIndex(ref string, upto int) (st *stage, ok bool) {
	i, err := strconv.Atoi(ref)
	if err != nil {
		return nil, false
	}
	if strconv.Itoa(i) == ref && i >= 0 && i < upto {
		return &c.stages[i], true
	}
	return nil, true
}

// image records an external image after checking it is a reference at
// all, so the worker's own check works on a well-formed name.
func (c *checker) image(n *parser.Node, ref, instr string) error {
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return c.invalid(n, "%s %s is not an image reference: %v", instr, ref, err)
	}
	c.images = append(c.images, Image{Ref: ref, Line: n.StartLine, Instruction: instr})
	return nil
}

func stageName(s string) bool {
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')) {
			return false
		}
	}
	return s != ""
}

// arg records ARG declarations. A build arg overrides the default; an ARG
// with neither takes the value of the same ARG before the first FROM.
// In a stage whose base is an external image the value is in doubt: that
// image's ENV of the same name may win.
func (c *checker) arg(n *parser.Node, vs vars, external bool) error {
	if err := c.flags(n, "ARG", nil); err != nil {
		return err
	}
	if n.Next == nil {
		return c.invalid(n, "ARG needs a name")
	}
	for w := n.Next; w != nil; w = w.Next {
		name, def, hasDef := strings.Cut(w.Value, "=")
		if !varName(name) {
			return c.invalid(n, "ARG %q: a name is letters, digits and '_'", name)
		}
		var v value
		if bv, ok := c.opts.BuildArgs[name]; ok {
			v = value{val: bv}
		} else if hasDef {
			val, reason, err := c.expand(def, vs)
			if err != nil {
				return c.invalid(n, "ARG %s: %v", name, err)
			}
			v = value{val: val, doubt: reason}
		} else if m, ok := c.meta[name]; ok && len(c.stages) > 0 {
			v = m
		} else {
			continue // declared without a value: stays as it was
		}
		if _, builtin := podmanArgs[name]; builtin && !fromCaller(c.opts.BuildArgs, name) && v.doubt == "" {
			v.doubt = "is an argument Podman sets itself; pass it in build_args"
		}
		if old, ok := vs[name]; ok && old.env {
			v = value{val: old.val, env: true, doubt: "is set by both ENV and ARG"}
		} else if external && v.doubt == "" {
			v.doubt = "is an ARG, and the base image's ENV may override it"
		}
		vs[name] = v
	}
	return nil
}

// env records ENV values, expanded as Podman does.
func (c *checker) env(n *parser.Node) error {
	if err := c.flags(n, "ENV", nil); err != nil {
		return err
	}
	vs := c.vars()
	for k := n.Next; k != nil; k = k.Next.Next.Next {
		if k.Next == nil || k.Next.Next == nil {
			return c.invalid(n, "ENV takes name=value pairs")
		}
		if !varName(k.Value) {
			return c.forbidden(n, "ENV %q is not allowed: name variables plainly (letters, digits and '_')", k.Value)
		}
		val, reason, err := c.expand(k.Next.Value, vs)
		if err != nil {
			return c.invalid(n, "ENV %s: %v", k.Value, err)
		}
		vs[k.Value] = value{val: val, env: true, doubt: reason}
	}
	return nil
}

// vars are the variables of the stage being read; inside ONBUILD they are
// empty, since the trigger runs in a build we have not seen.
func (c *checker) vars() vars {
	if c.trigger > 0 || c.inOnbuild || c.cur() == nil {
		return vars{}
	}
	return c.cur().vars
}

func varName(s string) bool {
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		if !letter && (i == 0 || !(r >= '0' && r <= '9')) {
			return false
		}
	}
	return s != ""
}

// podmanArgs are the ARGs Podman fills in when a Containerfile declares
// them: the platform of the build and the proxy settings of the host's
// environment. Their value is Podman's, not the default written here,
// unless the caller passes them.
var podmanArgs = map[string]struct{}{
	"TARGETPLATFORM": {}, "TARGETOS": {}, "TARGETARCH": {}, "TARGETVARIANT": {},
	"BUILDPLATFORM": {}, "BUILDOS": {}, "BUILDARCH": {}, "BUILDVARIANT": {},
	"HTTP_PROXY": {}, "http_proxy": {}, "HTTPS_PROXY": {}, "https_proxy": {},
	"FTP_PROXY": {}, "ftp_proxy": {}, "NO_PROXY": {}, "no_proxy": {},
	"ALL_PROXY": {}, "all_proxy": {},
}

func fromCaller(args map[string]string, name string) bool {
	_, ok := args[name]
	return ok
}
