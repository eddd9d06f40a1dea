package handlers

import (
	"strings"
	"testing"

	nettypes "go.podman.io/common/libnetwork/types"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/limits"
)

// TestParsePorts holds the one port parser (nat.ParsePortSpec underneath)
// against the forms podman run -p takes, IPv6 host addresses in brackets
// among them, and against the refusals and their words.
func TestParsePorts(t *testing.T) {
	v6 := limits.DefaultPolicy()
	v6.PortAddresses = []string{"::1", "127.0.0.1"}
	tcp := func(ip string, host, ctr uint16) nettypes.PortMapping {
		return nettypes.PortMapping{HostIP: ip, HostPort: host, ContainerPort: ctr, Protocol: "tcp", Range: 1}
	}
	ok := []struct {
		in     string
		policy limits.Policy
		want   nettypes.PortMapping
	}{
		{"8080:80", limits.DefaultPolicy(), tcp("127.0.0.1", 8080, 80)},
		{"0:80/tcp", limits.DefaultPolicy(), tcp("127.0.0.1", 0, 80)},
		{"127.0.0.1:8080:80", limits.DefaultPolicy(), tcp("127.0.0.1", 8080, 80)},
		{"8053:53/udp", limits.DefaultPolicy(), nettypes.PortMapping{HostIP: "127.0.0.1", HostPort: 8053, ContainerPort: 53, Protocol: "udp", Range: 1}},
		{"[::1]:8080:80", v6, tcp("::1", 8080, 80)},
		{"[::1]:8080:80/tcp", v6, tcp("::1", 8080, 80)},
		{"[0:0:0:0:0:0:0:1]:0:80", v6, tcp("::1", 0, 80)},
		{"8080:80", v6, tcp("::1", 8080, 80)}, // the first allowed address
	}
	for _, tt := range ok {
		got, err := parsePorts([]string{tt.in}, tt.policy)
		if err != nil || len(got) != 1 || got[0] != tt.want {
			t.Errorf("parsePorts(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct {
		in     string
		policy limits.Policy
		kind   fault.Kind
		naming string
	}{
		{"80", limits.DefaultPolicy(), fault.KindInvalidParams, "is not HOST:CONTAINER"},
		{"8080:80/icmp", limits.DefaultPolicy(), fault.KindInvalidParams, "is not HOST:CONTAINER"},
		{"::1:8080:80", v6, fault.KindInvalidParams, "is not HOST:CONTAINER"}, // brackets needed
		{"[::1]8080:80", v6, fault.KindInvalidParams, "is not HOST:CONTAINER"},
		{"1:2:3:4", limits.DefaultPolicy(), fault.KindInvalidParams, "is not HOST:CONTAINER"},
		{"8080:0", limits.DefaultPolicy(), fault.KindInvalidParams, "ports are numbers"},
		{"8080:70000", limits.DefaultPolicy(), fault.KindInvalidParams, "ports are numbers"},
		{"8080-8081:80-81", limits.DefaultPolicy(), fault.KindInvalidParams, "ports are numbers"},
		{"x:80", limits.DefaultPolicy(), fault.KindInvalidParams, "ports are numbers"},
		{"localhost:8080:80", limits.DefaultPolicy(), fault.KindInvalidParams, `"localhost" is not an IP address`},
		{"[fe80::zz]:8080:80", v6, fault.KindInvalidParams, `"fe80::zz" is not an IP address`},
		{"[::1]:8080:80", limits.DefaultPolicy(), fault.KindForbidden, "host address ::1 is not allowed"},
		{"[::2]:8080:80", v6, fault.KindForbidden, "--port-addresses ::1,127.0.0.1"},
		{"[::1]:80:80", v6, fault.KindForbidden, "privileged port"},
	}
	for _, tt := range bad {
		_, err := parsePorts([]string{tt.in}, tt.policy)
		e, isRPC := err.(*fault.Error)
		if !isRPC || e.Kind != tt.kind || e.Fields["field"] != "ports" || !strings.Contains(e.Message, tt.naming) {
			t.Errorf("parsePorts(%q) = %v; want %s naming %q", tt.in, err, tt.kind, tt.naming)
		}
	}
}
