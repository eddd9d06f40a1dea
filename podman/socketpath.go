package podman

import (
	"net/url"
	"path"
	"strings"
)

// SocketPath is the file a unix socket URI names, and whether uri names
// one at all. A bare absolute path, unix:///run/x and Podman's host/path
// form unix://run/x all name /run/x, as the bindings dial them; ssh://,
// tcp:// and anything unparsable name no local file. The worker's config
// (which sockets no container may mount) and New (which file to dial)
// both read socket URIs through it, so the two cannot disagree.
func SocketPath(uri string) (string, bool) {
	if strings.HasPrefix(uri, "/") {
		return path.Clean(uri), true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "unix" {
		return "", false
	}
	p := u.Path
	if u.Host != "" {
		p = "/" + u.Host + u.Path
	}
	if p == "" {
		return "", false
	}
	return path.Clean(p), true
}
