package containerfile

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// mountWhy says why a mount type is refused.
var mountWhy = map[string]string{
	"cache":  "cache mounts keep data on the host between builds, and their id has reached host paths (CVE-2024-9675)",
	"secret": "secret mounts read files from the host",
	"ssh":    "ssh mounts reach the host's SSH agent",
}

// tmpfsKeys are the options of a tmpfs mount: memory only, nothing of the
// host's.
var tmpfsKeys = map[string]bool{ // true: takes a value
	"type": true, "target": true, "dst": true, "destination": true,
	"size": true, "tmpfs-size": true, "mode": true, "tmpfs-mode": true,
	"ro": false, "readonly": false,
}

// bindKeys are the options of a context bind (--build-context-mounts).
var bindKeys = map[string]bool{
	"type": true, "target": true, "dst": true, "destination": true,
	"source": true, "src": true,
	"ro": false, "readonly": false,
}

// mount checks one --mount value. It is split the way buildah 1.28 splits
// it (on commas, then on the first "="), and anything that parser and
// buildkit's CSV reader could read differently (quotes, escapes,
// variables, blanks) is refused rather than interpreted.
func (c *checker) mount(n *parser.Node, val string) error {
	if strings.ContainsAny(val, "\"'`\\$ \t") {
		return c.forbidden(n, "RUN --mount=%s is not allowed: write mount options as plain key=value pairs, without quotes, escapes, variables or blanks", val)
	}
	opts := map[string]string{}
	var order []string
	for _, field := range strings.Split(val, ",") {
		k, v, hasV := strings.Cut(field, "=")
		if k == "" {
			return c.invalid(n, "RUN --mount=%s has an empty option", val)
		}
		if _, dup := opts[k]; dup {
			return c.forbidden(n, "RUN --mount=%s is not allowed: it names %s twice, and builders disagree on which one wins", val, k)
		}
		if !hasV {
			v = "\x00" // no "=": a flag; "" would hide "key="
		}
		opts[k] = v
		order = append(order, k)
	}
	// buildah 1.28 keeps the type of the previous --mount of the same RUN
	// when one omits it (bind for the first), so an untyped mount is
	// refused even where binds are open.
	typ, ok := opts["type"]
	if !ok {
		return c.forbidden(n, "RUN --mount without type= is not allowed: Podman 4 takes it for a bind mount, or for the type of the mount before it; write type=tmpfs")
	}
	switch typ {
	case "tmpfs":
		return c.mountKeys(n, typ, opts, order, tmpfsKeys, "tmpfs mounts take target, size, mode and ro only")
	case "bind":
		if !c.opts.AllowContextBinds {
			return c.forbidden(n, "RUN --mount=type=bind is not allowed: bind mounts read host files; %s", bindHint)
		}
		return c.contextBind(n, opts, order)
	}
	why, known := mountWhy[typ]
	if !known {
		why = "the worker allows only type=tmpfs"
	}
	return c.forbidden(n, "RUN --mount=type=%s is not allowed: %s", typ, why)
}

const bindHint = "the operator can open read-only binds of the build context with --build-context-mounts"

// mountKeys refuses options not in keys, and values on options that are
// flags (ro=false would mean rw to buildkit and ro to buildah).
func (c *checker) mountKeys(n *parser.Node, typ string, opts map[string]string, order []string, keys map[string]bool, why string) error {
	for _, k := range order {
		takesValue, ok := keys[k]
		if !ok {
			return c.forbidden(n, "RUN --mount=type=%s,%s is not allowed: %s", typ, k, why)
		}
		if takesValue != (opts[k] != "\x00") {
			if takesValue {
				return c.invalid(n, "RUN --mount=type=%s: %s needs a value (%s=...)", typ, k, k)
			}
			return c.forbidden(n, "RUN --mount=type=%s,%s=%s is not allowed: write %s alone", typ, k, opts[k], k)
		}
	}
	return nil
}

// contextBind allows a read-only bind of a path inside the build context,
// opened by --build-context-mounts.
func (c *checker) contextBind(n *parser.Node, opts map[string]string, order []string) error {
	if _, ok := opts["from"]; ok {
		return c.forbidden(n, "RUN --mount=type=bind,from= is not allowed: it binds another image or stage, where a symlink reaches the host (CVE-2024-1753); --build-context-mounts opens binds of the build context only")
	}
	for _, k := range []string{"rw", "readwrite"} {
		if _, ok := opts[k]; ok {
			return c.forbidden(n, "RUN --mount=type=bind,%s is not allowed: --build-context-mounts opens read-only binds only; drop %s", k, k)
		}
	}
	if err := c.mountKeys(n, "bind", opts, order, bindKeys, "--build-context-mounts allows source, target and ro only"); err != nil {
		return err
	}
	src, ok := opts["source"]
	if s, both := opts["src"]; both && ok {
		return c.forbidden(n, "RUN --mount=type=bind names both source and src; give one")
	} else if !ok {
		src = s
	}
	if src == "" || src == "\x00" {
		src = "." // buildkit binds the context's root when no source is named
	}
	if reason := insideContext(c.opts.ContextDir, src); reason != "" {
		return c.forbidden(n, "RUN --mount=type=bind,source=%s is not allowed: %s", src, reason)
	}
	return nil
}
