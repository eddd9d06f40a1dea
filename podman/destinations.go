package podman

import (
	"fmt"
	"slices"
	"strings"

	"go.podman.io/common/pkg/config"
)

// Destination is a connection Podman itself knows (`podman system
// connection list`).
type Destination struct {
	Name     string
	URI      string
	Identity string // the key file for an ssh:// URI, "" when none is set
	Default  bool   // Podman's default connection
	// TLS says the connection needs a client certificate, which the
	// worker does not support.
	TLS bool
}

// PodmanDestinations reads Podman's own connection list through Podman's
// own code (go.podman.io/common/pkg/config), so it finds what `podman
// system connection list` finds, with the same precedence:
//   - podman-connections.json, which Podman 5 writes: $PODMAN_CONNECTIONS_CONF,
//     else $XDG_CONFIG_HOME/containers/podman-connections.json, else
//     ~/.config/containers/podman-connections.json (for root too);
//   - [engine.service_destinations] of containers.conf, where Podman 4
//     wrote them: every containers.conf Podman reads ($CONTAINERS_CONF
//     alone when set; else /usr/share/containers, /etc/containers, which is
//     where Podman 4 wrote them for root, and ~/.config/containers, with
//     their .d folders). A name in podman-connections.json hides the same
//     name here.
//
// The default is podman-connections.json's, else containers.conf's
// engine.active_service. The list is sorted by name.
func PodmanDestinations() ([]Destination, error) {
	cfg, err := config.New(nil)
	if err != nil {
		return nil, fmt.Errorf("reading Podman's containers.conf: %w", err)
	}
	conns, err := cfg.GetAllConnections()
	if err != nil {
		return nil, fmt.Errorf("reading Podman's connection list: %w", err)
	}
	out := make([]Destination, 0, len(conns))
	for _, c := range conns {
		out = append(out, Destination{
			Name: c.Name, URI: c.URI, Identity: c.Identity, Default: c.Default,
			TLS: c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "",
		})
	}
	slices.SortFunc(out, func(a, b Destination) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
