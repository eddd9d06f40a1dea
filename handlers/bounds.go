package handlers

import (
	"path/filepath"
	"strings"

	"github.com/podman-worker/podman-worker/fault"
)

// Ceilings on what a caller's container config may hold. Podman keeps
// every entry in its database and copies it into each inspect and ps: a
// run with 400k env entries made ps take 30 s for every caller. The
// numbers are far above what a function needs (Linux's ARG_MAX for argv
// and env together is 2 MiB).
const (
	MaxEnvEntries = 1024      // env
	MaxArgs       = 4096      // command and entrypoint, each
	MaxListItems  = 64        // ports, volumes, mounts, cap_add, each
	MaxSpecBytes  = 256 << 10 // env, command and entrypoint together
)

// checkBounds refuses a config that holds more than the ceilings above,
// or a NUL byte in any string that reaches Podman and runc: the kernel
// and runc's JSON cannot carry one, and Podman's answer to it names host
// paths.
func checkBounds(c containerConfig) error {
	size := 0
	for _, l := range []struct {
		field string
		list  []string
		max   int
	}{
		{"command", c.Command, MaxArgs},
		{"entrypoint", c.Entrypoint, MaxArgs},
		{"ports", c.Ports, MaxListItems},
		{"volumes", c.Volumes, MaxListItems},
		{"mounts", c.Mounts, MaxListItems},
		{"cap_add", c.Resources.CapAdd, MaxListItems},
	} {
		if len(l.list) > l.max {
			return tooMany(l.field, len(l.list), l.max)
		}
		for _, s := range l.list {
			if err := noNUL(l.field, s); err != nil {
				return err
			}
			if l.field == "command" || l.field == "entrypoint" {
				size += len(s) + 1
			}
		}
	}
	if len(c.Env) > MaxEnvEntries {
		return tooMany("env", len(c.Env), MaxEnvEntries)
	}
	for k, v := range c.Env {
		if err := noNUL("env", k+v); err != nil {
			return err
		}
		size += len(k) + len(v) + 2
	}
	if size > MaxSpecBytes {
		return fault.Param(fault.KindForbidden, "env", `"env", "command" and "entrypoint" hold %d bytes together, above this worker's ceiling of %d`, size, MaxSpecBytes)
	}
	for field, s := range map[string]string{"image": c.Image, "name": c.Name, "workdir": c.Workdir, "user": c.User} {
		if err := noNUL(field, s); err != nil {
			return err
		}
	}
	return nil
}

func tooMany(field string, n, max int) error {
	return fault.Param(fault.KindForbidden, field, "%q has %d entries, above this worker's ceiling of %d", field, n, max)
}

func noNUL(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fault.Param(fault.KindInvalidParams, field, "%q contains a NUL byte", field)
	}
	return nil
}

// checkTarget refuses a mount target that would shadow what the sandbox
// stands on: the root itself (runc then makes dev, proc, sys... inside the
// host folder mounted there) and the kernel's and runc's own trees.
func checkTarget(field, target string) error {
	t := filepath.Clean(target)
	if t == "/" {
		return fault.Forbidden(field, "the target / would replace the container's root; mount below it, e.g. /data")
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if t == sys || strings.HasPrefix(t, sys+"/") {
			return fault.Forbidden(field, "the target %s is in %s, which the container's sandbox depends on", t, sys)
		}
	}
	return nil
}
