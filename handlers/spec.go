package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/docker/go-connections/nat"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	nettypes "go.podman.io/common/libnetwork/types"
	storagetypes "go.podman.io/storage/types"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/podman"
)

// containerConfig is what run and create share: the container's process,
// its files and its limits.
type containerConfig struct {
	Image      string
	Name       string
	Command    []string
	Entrypoint []string
	Env        map[string]string
	Ports      []string
	Volumes    []string
	Mounts     []string
	Workdir    string
	User       string
	Resources  limits.Resources
	// Kept says the container is handed over to the caller and outlives
	// the call (create; run with auto_remove false).
	Kept bool
	// LongLived is a container from create: its output goes to a capped
	// log file, since nobody is attached to it, and it gets writable
	// in-memory copies of /etc and /home (stateDirs) and of Writable.
	LongLived bool
	// Writable are further folders a create caller asked to be writable
	// in the same way.
	Writable []string
}

// scratchDirs are the writable places of a function container whose root
// filesystem is read-only: tmpfs mounts, as on AWS Lambda, with the mode
// an image's own directories would have.
var scratchDirs = []struct{ path, mode string }{{"/tmp", "1777"}, {"/var/tmp", "1777"}, {"/run", "755"}}

// stateDirs are the folders a long-lived (create) container gets as
// writable in-memory copies of the image's own, so that seed 003's users
// (add_user) and files (add_file) work on a read-only root: tmpfs mounts
// that Podman fills with the image's content (tmpcopyup), charged to the
// container's memory limit like the scratch space, never on host disk.
var stateDirs = []string{"/etc", "/home"}

// maxWritable bounds the folders a create call may add to stateDirs.
const maxWritable = 8

// specFor builds a locked-down spec: no new privileges, never privileged,
// no capabilities (unless the operator allows some and the caller asks),
// a read-only root filesystem with tmpfs scratch space, output that never
// reaches a file for run and a capped log file for create, limits on
// memory, swap, cpu and pids, the chosen network (none by default), host
// paths and ports only within the policy, and a conmon-side timeout so
// that a run's deadline holds even if the worker itself dies.
func (s *Service) specFor(ctx context.Context, c containerConfig) (*specgen.SpecGenerator, error) {
	if err := checkBounds(c); err != nil {
		return nil, err
	}
	g := specgen.NewSpecGenerator(c.Image, false)
	g.Name = c.Name
	g.Command = c.Command
	g.Entrypoint = c.Entrypoint
	g.Env = c.Env
	g.WorkDir = c.Workdir
	g.User = c.User
	// Which worker made it: scope, and the sweep of a dead worker's
	// containers, read these (podman.Identity).
	g.Labels = s.identity.Labels(c.Kept)
	no, yes := false, true
	g.Privileged = &no
	g.NoNewPrivileges = &yes
	g.Terminal = &no
	// A run's container takes its input on stdin (closed at once
	// without one); a long-lived one has none.
	g.Stdin = &no
	if !c.LongLived {
		g.Stdin = &yes
	}
	if c.LongLived {
		// k8s-file keeps stdout and stderr apart for logs and needs no
		// journald; conmon truncates the file at the cap.
		g.LogConfiguration = &specgen.LogConfig{Driver: "k8s-file", Size: s.policy.MaxLogBytes}
	} else {
		// run attaches before the start and reads every byte from the
		// stream: a log file would only be a copy on the host's disk
		// (~23 bytes per line of k8s-file framing), which a function
		// printing in a loop grows at hundreds of MB/s.
		g.LogConfiguration = &specgen.LogConfig{Driver: "none"}
	}
	// Container root holds no capability: CapEff is 0 unless the operator
	// allowed some (--allow-caps) and the caller asked (cap_add).
	g.CapDrop = []string{"ALL"}
	g.CapAdd = c.Resources.CapAdd
	if s.policy.UserNS == "auto" {
		// Container root is an unprivileged host uid from the
		// "containers" range of /etc/subuid, different per container.
		g.UserNS = specgen.Namespace{NSMode: specgen.Auto}
		g.IDMappings = &storagetypes.IDMappingOptions{AutoUserNs: true, AutoUserNsOpts: storagetypes.AutoUserNsOptions{Size: 65536}}
	}

	r := c.Resources
	period := uint64(limits.CPUPeriod)
	g.ResourceLimits = &spec.LinuxResources{
		Memory: &spec.LinuxMemory{Limit: &r.Memory, Swap: &r.MemorySwap},
		CPU:    &spec.LinuxCPU{Quota: &r.CPUQuota, Period: &period},
		Pids:   &spec.LinuxPids{Limit: r.Pids},
	}
	if r.Timeout > 0 {
		// conmon kills the container a second after the worker would.
		g.Timeout = uint(math.Ceil(r.Timeout.Seconds())) + 1
	}
	g.NetNS = specgen.Namespace{NSMode: specgen.NamespaceMode(r.NetworkMode)}

	ports, err := parsePorts(c.Ports, s.policy)
	if err != nil {
		return nil, err
	}
	if len(ports) > 0 && r.NetworkMode == "none" {
		return nil, fault.Param(fault.KindInvalidParams, "ports", `"ports" need a network: set network_mode to "bridge"`)
	}
	g.PortMappings = ports
	for _, v := range c.Volumes {
		if err := s.addVolume(ctx, g, "volumes", v, ""); err != nil {
			return nil, err
		}
	}
	for _, m := range c.Mounts {
		src, rest, _ := strings.Cut(m, ":")
		target, opts, _ := strings.Cut(rest, ":")
		if src == "tmpfs" {
			if err := addTmpfs(g, target, opts, r.Memory); err != nil {
				return nil, err
			}
			continue
		}
		if err := s.addVolume(ctx, g, "mounts", src+":"+target, opts); err != nil {
			return nil, err
		}
	}

	if err := s.addScratch(g, c); err != nil {
		return nil, err
	}
	shm := r.Memory
	g.ShmSize = &shm
	return g, nil
}

// addScratch gives the container its writable places when its root is
// read-only: tmpfs scratch folders, and a long-lived container's writable
// folders.
func (s *Service) addScratch(g *specgen.SpecGenerator, c containerConfig) error {
	r := c.Resources
	yes := true
	if !s.policy.WritableRoot {
		g.ReadOnlyFilesystem = &yes
	}
	// Scratch space is memory: tmpfs pages are charged to the container's
	// memory cgroup, so together they never hold more than the memory
	// limit, and each is sized to it rather than to Podman's default of
	// half the host's RAM. A caller's own mount at one of these paths
	// takes its place.
	taken := map[string]bool{}
	for _, m := range g.Mounts {
		taken[m.Destination] = true
	}
	for _, v := range g.Volumes {
		taken[v.Dest] = true
	}
	for _, d := range scratchDirs {
		if !taken[d.path] {
			g.Mounts = append(g.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: d.path,
				Options: []string{"rw", "nosuid", "nodev", "mode=" + d.mode, "size=" + strconv.FormatInt(r.Memory, 10)}})
		}
	}
	if c.LongLived && !s.policy.WritableRoot {
		dirs, err := writableDirs(c.Writable)
		if err != nil {
			return err
		}
		for _, d := range dirs {
			if !taken[d] {
				taken[d] = true
				g.Mounts = append(g.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: d,
					Options: []string{"rw", "nosuid", "nodev", "tmpcopyup", "size=" + strconv.FormatInt(r.Memory, 10)}})
			}
		}
	}
	return nil
}

// writableDirs checks a create call's writable folders and answers them
// after stateDirs: absolute, at most maxWritable, never / nor a folder
// the kernel or Podman provides (/proc, /sys, /dev and what is under them).
func writableDirs(list []string) ([]string, error) {
	if len(list) > maxWritable {
		return nil, fault.Param(fault.KindInvalidParams, "writable", "\"writable\" names %d folders; at most %d", len(list), maxWritable)
	}
	dirs := slices.Clone(stateDirs)
	for _, d := range list {
		if strings.ContainsRune(d, 0) || !filepath.IsAbs(d) || hasDotDot(d) {
			return nil, fault.Invalid("writable", "%q must be an absolute path in the container, without \"..\"", d)
		}
		d = filepath.Clean(d)
		for _, sys := range []string{"/proc", "/sys", "/dev"} {
			if d == "/" || d == sys || strings.HasPrefix(d, sys+"/") {
				return nil, fault.Forbidden("writable", "%q cannot be made writable: /, /proc, /sys and /dev are the kernel's and the container's own", d)
			}
		}
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// pinImage checks that g's image is one the caller's owner may use (its
// own, or a shared one), after every other param passed, and makes the
// container from the id the image has now: a name that moves between
// this check and the create cannot swap it.
func (s *Service) pinImage(ctx context.Context, g *specgen.SpecGenerator) (*podman.Image, error) {
	img, err := s.podman(ctx).ImageOf(ctx, g.Image)
	if err != nil {
		return nil, err
	}
	g.RawImageName, g.Image = g.Image, img.ID
	return img, nil
}

// parsePorts reads ["HOST:CONTAINER"], also "IP:HOST:CONTAINER" (an IPv6
// address in brackets, "[::1]:8080:80", as podman run -p writes it) and a
// "/udp", "/tcp" or "/sctp" suffix, and binds each where the policy allows:
// on 127.0.0.1 unless the operator allows other host addresses, and never
// below host port 1024 unless allowed.
func parsePorts(list []string, policy limits.Policy) ([]nettypes.PortMapping, error) {
	var out []nettypes.PortMapping
	for _, p := range list {
		m, err := parsePort(p)
		if err != nil {
			return nil, err
		}
		ip, err := policy.PortBinding(p, m.HostIP, m.HostPort)
		if err != nil {
			return nil, err
		}
		m.HostIP = ip
		out = append(out, m)
	}
	return out, nil
}

// parsePort reads one port spec with go-connections' nat.ParsePortSpec, the
// parser of Docker's -p, so brackets around an IPv6 host address are
// respected ("[::1]:8080:80"; an IPv6 address without them is refused, as
// its colons cannot be told from the ports'). It takes one port a side (no
// ranges) and always a host port. The host address comes back as written,
// brackets removed, for the policy to check.
func parsePort(p string) (nettypes.PortMapping, error) {
	shape := fault.Invalid("ports", "%q is not HOST:CONTAINER[/tcp|udp]", p)
	proto, hostPorts := nat.SplitProtoPort(p)
	ports := hostPorts // HOST:CONTAINER, after an address in brackets
	if i := strings.LastIndex(hostPorts, "]"); i >= 0 {
		if ports = hostPorts[i+1:]; !strings.HasPrefix(ports, ":") {
			return nettypes.PortMapping{}, shape
		}
	}
	if n := strings.Count(ports, ":"); n < 1 || n > 2 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return nettypes.PortMapping{}, shape
	}
	maps, err := nat.ParsePortSpec(p)
	if err != nil {
		if ip, ok := hostAddress(hostPorts); ok && net.ParseIP(ip) == nil {
			return nettypes.PortMapping{}, fault.Invalid("ports", "%q: %q is not an IP address", p, ip)
		}
	}
	var host, ctr uint64
	if err == nil && len(maps) == 1 {
		host, err = strconv.ParseUint(maps[0].Binding.HostPort, 10, 16)
		ctr = uint64(maps[0].Port.Int())
	}
	if err != nil || len(maps) != 1 || ctr == 0 {
		return nettypes.PortMapping{}, fault.Invalid("ports", "%q: ports are numbers from 1 to 65535 (host 0 picks a free one)", p)
	}
	return nettypes.PortMapping{HostIP: maps[0].Binding.HostIP, HostPort: uint16(host), ContainerPort: uint16(ctr), Protocol: proto, Range: 1}, nil
}

// hostAddress is the IP part of "IP:HOST:CONTAINER", brackets removed, for
// naming it in a message when nat refuses it.
func hostAddress(spec string) (string, bool) {
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return "", false
	}
	j := strings.LastIndex(spec[:i], ":")
	if j < 0 {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(spec[:j], "["), "]"), true
}

var (
	volumeName  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	propagation = map[string]bool{"rshared": true, "shared": true, "private": true, "rprivate": true, "slave": true, "rslave": true}
)

// addVolume adds "SOURCE:TARGET" with options "relabel,propagation,ro":
// a host path (absolute) is bind-mounted if the policy allows it, anything
// else is a named volume that Podman creates on first use.
func (s *Service) addVolume(ctx context.Context, g *specgen.SpecGenerator, field, v, opts string) error {
	src, target, ok := strings.Cut(v, ":")
	if !ok {
		return fault.Invalid(field, "%q is not SOURCE:TARGET", v)
	}
	target, extra, _ := strings.Cut(target, ":") // volumes may carry ":ro" etc.
	if opts == "" {
		opts = extra
	}
	if !filepath.IsAbs(target) {
		return fault.Invalid(field, "the target %q must be an absolute path in the container", target)
	}
	if err := checkTarget(field, target); err != nil {
		return err
	}
	var options []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
		case o == "z" || o == "Z" || o == "ro" || o == "rw" || propagation[o]:
			options = append(options, o)
		default:
			return fault.Invalid(field, "option %q is not one of z, Z, ro, rw, rshared, shared, private, rprivate, slave, rslave (size is for tmpfs mounts: tmpfs:/path:size=16m)", o)
		}
	}
	if filepath.IsAbs(src) {
		policy, err := s.mountPolicy(ctx)
		if err != nil {
			return err
		}
		resolved, err := policy.BindSource(field, src)
		if err != nil {
			return err
		}
		g.Mounts = append(g.Mounts, spec.Mount{Type: "bind", Source: resolved, Destination: filepath.Clean(target), Options: append([]string{"rbind"}, options...)})
		return nil
	}
	if !volumeName.MatchString(src) {
		return fault.Invalid(field, "the source %q is neither an absolute host path nor a volume name", src)
	}
	if !s.policy.AllowNamedVolumes {
		return fault.Forbidden(field, "named volume %q is host disk that every function naming it shares, so this worker does not mount them (--allow-named-volumes); use a tmpfs mount (\"mounts\": [\"tmpfs:%s\"]) for scratch space", src, target)
	}
	if err := s.podman(ctx).OwnedVolume(ctx, src); err != nil {
		return err
	}
	g.Volumes = append(g.Volumes, &specgen.NamedVolume{Name: src, Dest: filepath.Clean(target), Options: options})
	return nil
}

// mountPolicy is the policy for host paths, with Podman's own storage
// (wherever its service keeps it) added to what is never mounted: a
// container holding it could read and change every image and container.
// Podman is asked only when the operator allows host paths at all.
func (s *Service) mountPolicy(ctx context.Context) (limits.Policy, error) {
	p := s.policy
	if len(p.MountRoots) == 0 || s.podman(ctx) == nil {
		return p, nil
	}
	store, err := s.podman(ctx).StorePaths(ctx)
	if err != nil {
		return p, err
	}
	p.NeverMount = limits.NeverMountPaths(append(slices.Clone(p.NeverMount), store...)...)
	return p, nil
}

// addTmpfs adds "tmpfs:TARGET:size=16m": a scratch space of bounded size,
// the container's memory limit at most (its pages count against it), and
// the memory limit when no size is given.
func addTmpfs(g *specgen.SpecGenerator, target, opts string, memory int64) error {
	if !filepath.IsAbs(target) {
		return fault.Invalid("mounts", "the tmpfs target %q must be an absolute path", target)
	}
	if err := checkTarget("mounts", target); err != nil {
		return err
	}
	options := []string{"nosuid", "nodev"}
	size := memory
	for _, o := range strings.Split(opts, ",") {
		if sz, ok := strings.CutPrefix(o, "size="); ok {
			n, err := limits.ParseBytes(sz)
			if err != nil {
				return fault.Invalid("mounts", "tmpfs size: %v", err)
			}
			if n > memory {
				return fault.Forbidden("mounts", "tmpfs size %s is above the container's memory limit (%s): tmpfs pages count against it, so ask for more memory", sz, limits.FormatBytes(memory))
			}
			size = n
		} else if o != "" {
			return fault.Invalid("mounts", "tmpfs option %q; only size=N is taken", o)
		}
	}
	options = append(options, "size="+strconv.FormatInt(size, 10))
	g.Mounts = append(g.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: filepath.Clean(target), Options: options})
	return nil
}

var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// checkName validates a container name a caller chose, or makes one.
func checkName(field, name string) (string, error) {
	if name == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		return "pw-" + hex.EncodeToString(b), nil
	}
	if !containerName.MatchString(name) {
		return "", fault.Invalid(field, "%q must start with a letter or digit and hold only letters, digits, '_', '.' and '-' (at most 128)", name)
	}
	return name, nil
}

// argv is an entrypoint: a string is one program path, an array is argv.
type argv []string

func (a *argv) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		if s == "" {
			return fmt.Errorf("must not be empty")
		}
		*a = argv{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil || len(list) == 0 || list[0] == "" {
		return fmt.Errorf("must be a string or a non-empty array of strings")
	}
	*a = list
	return nil
}
