package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/containers/podman/v5/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	nettypes "go.podman.io/common/libnetwork/types"

	"github.com/podman-worker/podman-worker/limits"
	"github.com/podman-worker/podman-worker/rpc"
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
}

// specFor builds a locked-down spec: no new privileges, never privileged,
// limits on memory, swap, cpu and pids, the chosen network (none by
// default), and a conmon-side timeout so that a run's deadline holds even
// if the worker itself dies.
func (s *Service) specFor(c containerConfig) (*specgen.SpecGenerator, error) {
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
	g.Stdin = &no
	// k8s-file keeps stdout and stderr apart and needs no journald.
	g.LogConfiguration = &specgen.LogConfig{Driver: "k8s-file"}

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

	ports, err := parsePorts(c.Ports)
	if err != nil {
		return nil, err
	}
	if len(ports) > 0 && r.NetworkMode == "none" {
		return nil, rpc.Errorf(rpc.KindInvalidParams, `Invalid params: "ports" need a network: set network_mode to "bridge"`).With("field", "ports")
	}
	g.PortMappings = ports
	for _, v := range c.Volumes {
		if err := addVolume(g, "volumes", v, ""); err != nil {
			return nil, err
		}
	}
	for _, m := range c.Mounts {
		src, rest, _ := strings.Cut(m, ":")
		target, opts, _ := strings.Cut(rest, ":")
		if src == "tmpfs" {
			if err := addTmpfs(g, target, opts); err != nil {
				return nil, err
			}
			continue
		}
		if err := addVolume(g, "mounts", src+":"+target, opts); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// parsePorts reads ["HOST:CONTAINER"], also "IP:HOST:CONTAINER" and a
// "/udp" or "/tcp" suffix.
func parsePorts(list []string) ([]nettypes.PortMapping, error) {
	var out []nettypes.PortMapping
	for _, p := range list {
		spec, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		parts := strings.Split(spec, ":")
		var ip string
		if len(parts) == 3 {
			ip, parts = parts[0], parts[1:]
		}
		if len(parts) != 2 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"ports\": %q is not HOST:CONTAINER[/tcp|udp]", p).With("field", "ports")
		}
		host, err1 := strconv.ParseUint(parts[0], 10, 16)
		ctr, err2 := strconv.ParseUint(parts[1], 10, 16)
		if err1 != nil || err2 != nil || ctr == 0 {
			return nil, rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"ports\": %q: ports are numbers from 1 to 65535 (host 0 picks a free one)", p).With("field", "ports")
		}
		out = append(out, nettypes.PortMapping{HostIP: ip, HostPort: uint16(host), ContainerPort: uint16(ctr), Protocol: proto, Range: 1})
	}
	return out, nil
}

var (
	volumeName  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	propagation = map[string]bool{"rshared": true, "shared": true, "private": true, "rprivate": true, "slave": true, "rslave": true}
)

// addVolume adds "SOURCE:TARGET" with options "relabel,propagation,ro":
// a host path (absolute) is bind-mounted, anything else is a named volume
// that Podman creates on first use.
func addVolume(g *specgen.SpecGenerator, field, v, opts string) error {
	src, target, ok := strings.Cut(v, ":")
	if !ok {
		return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q: %q is not SOURCE:TARGET", field, v).With("field", field)
	}
	target, extra, _ := strings.Cut(target, ":") // volumes may carry ":ro" etc.
	if opts == "" {
		opts = extra
	}
	if !filepath.IsAbs(target) {
		return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q: the target %q must be an absolute path in the container", field, target).With("field", field)
	}
	var options []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
		case o == "z" || o == "Z" || o == "ro" || o == "rw" || propagation[o]:
			options = append(options, o)
		default:
			return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q: option %q is not one of z, Z, ro, rw, rshared, shared, private, rprivate, slave, rslave (size is for tmpfs mounts: tmpfs:/path:size=16m)", field, o).With("field", field)
		}
	}
	if filepath.IsAbs(src) {
		g.Mounts = append(g.Mounts, spec.Mount{Type: "bind", Source: filepath.Clean(src), Destination: filepath.Clean(target), Options: append([]string{"rbind"}, options...)})
		return nil
	}
	if !volumeName.MatchString(src) {
		return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q: the source %q is neither an absolute host path nor a volume name", field, src).With("field", field)
	}
	g.Volumes = append(g.Volumes, &specgen.NamedVolume{Name: src, Dest: filepath.Clean(target), Options: options})
	return nil
}

// addTmpfs adds "tmpfs:TARGET:size=16m": a scratch space of bounded size.
func addTmpfs(g *specgen.SpecGenerator, target, opts string) error {
	if !filepath.IsAbs(target) {
		return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"mounts\": the tmpfs target %q must be an absolute path", target).With("field", "mounts")
	}
	options := []string{"nosuid", "nodev"}
	for _, o := range strings.Split(opts, ",") {
		if sz, ok := strings.CutPrefix(o, "size="); ok {
			n, err := limits.ParseBytes(sz)
			if err != nil {
				return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"mounts\": tmpfs size: %v", err).With("field", "mounts")
			}
			options = append(options, "size="+strconv.FormatInt(n, 10))
		} else if o != "" {
			return rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"mounts\": tmpfs option %q; only size=N is taken", o).With("field", "mounts")
		}
	}
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
		return "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: %q: %q must start with a letter or digit and hold only letters, digits, '_', '.' and '-' (at most 128)", field, name).With("field", field)
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
