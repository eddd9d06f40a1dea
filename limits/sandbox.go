package limits

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/podman-worker/podman-worker/fault"
)

// This file holds the parts of the policy that widen the sandbox:
// capabilities, published ports and host paths. Each starts closed and
// only the operator's lists open it; a caller can ask within them, never
// past them.

// capabilities are the Linux capability names, without CAP_.
var capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
	"DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG",
	"SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE",
	"SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// BuildDropCaps are the capabilities a build's RUN steps lose: what a
// package install needs (chown, setuid, file ownership) stays, raw
// sockets, device nodes, audit, chroot and file capabilities go.
var BuildDropCaps = []string{"CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_SYS_CHROOT"}

// capName normalises "net_raw" and "CAP_NET_RAW" to "NET_RAW"; ok is false
// for a name Linux does not have.
func capName(s string) (string, bool) {
	n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CAP_")
	return n, slices.Contains(capabilities, n)
}

// ParseCaps reads the operator's --allow-caps list, such as "NET_BIND_SERVICE,CHOWN".
func ParseCaps(s string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if strings.TrimSpace(c) == "" {
			continue
		}
		n, ok := capName(c)
		if !ok {
			return nil, fmt.Errorf("%q is not a Linux capability (such as NET_BIND_SERVICE or CHOWN; ALL is not taken: name each one)", c)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// capAdd checks a caller's cap_add against AllowCaps and answers the
// "CAP_" names Podman takes.
func (p Policy) capAdd(list []string) ([]string, error) {
	var out []string
	for _, c := range list {
		n, ok := capName(c)
		if !ok {
			return nil, fault.Invalid("cap_add", "%q is not a Linux capability such as NET_BIND_SERVICE", c)
		}
		if !slices.Contains(p.AllowCaps, n) {
			allowed := "none: --allow-caps is empty"
			if len(p.AllowCaps) > 0 {
				allowed = "--allow-caps " + strings.Join(p.AllowCaps, ",")
			}
			return nil, fault.Forbidden("cap_add", "%q is not allowed by this worker's policy (%s); every capability is dropped unless the operator allows it", c, allowed)
		}
		if !slices.Contains(out, "CAP_"+n) {
			out = append(out, "CAP_"+n)
		}
	}
	return out, nil
}

// ParsePortAddresses reads the operator's --port-addresses, such as
// "127.0.0.1" or "0.0.0.0,10.0.0.5".
func ParsePortAddresses(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address such as 127.0.0.1 or 0.0.0.0", a)
		}
		out = append(out, ip.String())
	}
	if len(out) == 0 {
		return nil, errors.New("give at least one address, such as 127.0.0.1")
	}
	return out, nil
}

// PortBinding checks where a published port (spec, as the caller wrote
// it) binds on the host, and answers the host address to use: the one the
// caller named, if the operator allows it, else the first allowed one
// (127.0.0.1 by default), so a port is never published on every interface
// unless the operator says so.
func (p Policy) PortBinding(spec, hostIP string, hostPort uint16) (string, error) {
	allowed := p.PortAddresses
	if len(allowed) == 0 {
		allowed = []string{"127.0.0.1"}
	}
	addr := allowed[0]
	if hostIP != "" {
		ip := net.ParseIP(hostIP)
		if ip == nil {
			return "", fault.Invalid("ports", "%q: %q is not an IP address", spec, hostIP)
		}
		if !slices.Contains(allowed, ip.String()) {
			return "", fault.Forbidden("ports", "%q: host address %s is not allowed by this worker's policy (--port-addresses %s)", spec, hostIP, strings.Join(allowed, ","))
		}
		addr = ip.String()
	}
	if hostPort != 0 && hostPort < 1024 && !p.AllowPrivilegedPorts {
		return "", fault.Forbidden("ports", "%q: host port %d is a privileged port (below 1024), which this worker does not publish (--allow-privileged-ports); use 1024 or above, or 0 for any free port", spec, hostPort)
	}
	return addr, nil
}

// ParseRoots reads an operator's list of host directories (--mount-roots,
// --build-roots): comma-separated absolute paths of existing directories,
// answered with their symlinks resolved, so that a source is compared
// with what it really is.
func ParseRoots(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("%q is not an absolute path", r)
		}
		resolved, err := filepath.EvalSymlinks(r)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", r, err)
		}
		if st, err := os.Stat(resolved); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%q is not a directory", r)
		}
		out = append(out, resolved)
	}
	return out, nil
}

// NeverMountPaths completes the list of paths never mounted: each as
// given and, when it exists, with its symlinks resolved (/var/run/podman
// is /run/podman).
func NeverMountPaths(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		for _, q := range []string{filepath.Clean(p), resolvedOr(p)} {
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	return out
}

func resolvedOr(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// BindSource checks a host path a caller wants bind-mounted (field is
// "volumes" or "mounts") and answers it with its symlinks resolved, which
// is what Podman is then given, so a link swapped afterwards cannot
// redirect the mount. The order of the checks keeps the worker from
// telling a caller anything about paths outside the mount roots: only a
// path under a root is looked up at all.
//
// Of what is under a root, only folders and regular files with a single
// link are mounted: a socket (another service's, not only Podman's) or a
// device would hand a container that service or device, and a file with
// more than one link may be a hard link to a file outside the roots (a
// 0600 secret of root's) that EvalSymlinks cannot see through.
func (p Policy) BindSource(field, src string) (string, error) {
	resolved, err := p.hostPath(field, src, p.MountRoots, "--mount-roots",
		"host bind mounts are not allowed by this worker's policy (--mount-roots is empty); use a named volume or a tmpfs mount")
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", fault.Invalid(field, "%q: %v", src, err)
	}
	switch mode := fi.Mode(); {
	case mode.IsDir():
	case mode.IsRegular():
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			return "", fault.Forbidden(field, "%q has %d hard links; a file with more than one link could be a file outside %s, so only a file with a single link is mounted", src, st.Nlink, "--mount-roots")
		}
	default:
		return "", fault.Forbidden(field, "%q is a %s; only folders and regular files are mounted", src, kindOf(mode))
	}
	return resolved, nil
}

func kindOf(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSocket != 0:
		return "socket"
	case mode&fs.ModeCharDevice != 0:
		return "character device"
	case mode&fs.ModeDevice != 0:
		return "device"
	case mode&fs.ModeNamedPipe != 0:
		return "named pipe"
	}
	return "special file"
}

// BuildPath checks a build's context or Containerfile (field "context" or
// "file") against BuildRoots, and answers it resolved. A relative path
// is taken relative to the first build root: the worker's working
// directory means nothing to a caller.
func (p Policy) BuildPath(field, path string) (string, error) {
	if len(p.BuildRoots) > 0 && path != "" && !filepath.IsAbs(path) {
		if hasDotDot(path) { // before Join cleans it away
			return "", fault.Forbidden(field, "%q: paths with \"..\" are refused; name the directory itself", path)
		}
		path = filepath.Join(p.BuildRoots[0], path)
	}
	return p.hostPath(field, path, p.BuildRoots, "--build-roots",
		"builds are not allowed by this worker's policy (--build-roots is empty)")
}

func (p Policy) hostPath(field, path string, roots []string, flag, closed string) (string, error) {
	if len(roots) == 0 {
		return "", fault.Forbidden(field, "%q: %s", path, closed)
	}
	if !filepath.IsAbs(path) {
		return "", fault.Invalid(field, "%q must be an absolute path on the worker's host", path)
	}
	if hasDotDot(path) {
		return "", fault.Forbidden(field, "%q: paths with \"..\" are refused; name the directory itself", path)
	}
	clean := filepath.Clean(path)
	if !underAny(clean, roots) {
		return "", fault.Forbidden(field, "%q is not under a directory this worker allows (%s %s)", path, flag, strings.Join(roots, ","))
	}
	resolved, err := filepath.EvalSymlinks(clean)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fault.Invalid(field, "%q does not exist on the worker's host", path)
	}
	if err != nil {
		return "", fault.Invalid(field, "%q: %v", path, err)
	}
	if !underAny(resolved, roots) {
		return "", fault.Forbidden(field, "%q resolves to %s, which is not under a directory this worker allows (%s %s)", path, resolved, flag, strings.Join(roots, ","))
	}
	for _, n := range p.NeverMount {
		if n == "/" && resolved != "/" {
			continue // everything is under "/": only "/" itself is refused
		}
		if within(resolved, n) || within(n, resolved) {
			return "", fault.Forbidden(field, "%q (%s) is or holds %s, which this worker never exposes to a container: Podman's sockets and storage, /proc, /sys, /dev and / are off limits whatever %s says", path, resolved, n, flag)
		}
	}
	return resolved, nil
}

func hasDotDot(path string) bool {
	return slices.Contains(strings.Split(path, "/"), "..")
}

func underAny(path string, roots []string) bool {
	for _, r := range roots {
		if within(path, r) {
			return true
		}
	}
	return false
}

// within says whether path is dir or lies below it (both clean and absolute).
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// ValidUserNS reads the operator's --userns.
func ValidUserNS(s string) (string, error) {
	switch s {
	case "", "host":
		return "", nil
	case "auto":
		return s, nil
	}
	return "", fmt.Errorf("%q is not a user namespace mode: use host (container root is host root, Podman's default) or auto (needs a \"containers\" range in /etc/subuid and /etc/subgid)", s)
}
