package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/system"
)

// ping answers "Pong" once Podman itself answered /_ping.
func (s *Service) ping(ctx context.Context, _ noParams) (any, error) {
	if _, err := s.podman.ping(ctx); err != nil {
		return nil, err
	}
	return "Pong", nil
}

// version answers the Podman server's version. /version costs ~220 ms on
// Podman 4.3 because the service asks conmon and the runtime for their
// versions every time; /_ping costs ~0.1 ms and its Server header
// ("Libpod/4.3.1 (linux)") names the same version. Asking on every call,
// instead of caching, keeps the answer true after an upgrade and restart.
func (s *Service) version(ctx context.Context, _ noParams) (any, error) {
	h, err := s.podman.ping(ctx)
	if err != nil {
		return nil, err
	}
	return versionFromHeaders(h)
}

func versionFromHeaders(h http.Header) (string, error) {
	if v, ok := strings.CutPrefix(h.Get("Server"), "Libpod/"); ok {
		v, _, _ = strings.Cut(v, " ")
		if v != "" {
			return v, nil
		}
	}
	if v := h.Get("Libpod-Api-Version"); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("the service's /_ping answer names no Libpod version (Server: %q)", h.Get("Server"))
}

type infoParams struct {
	Format string `json:"format"`
}

// info answers the service's info object, or the text that a Go template
// renders from it with podman's own template functions.
func (s *Service) info(ctx context.Context, p infoParams) (any, error) {
	info, err := system.Info(ctx, nil)
	if err != nil {
		return nil, err
	}
	if p.Format != "" {
		return render(p.Format, info)
	}
	return info, nil
}

// ping calls /_ping on the shared connection and returns its headers.
func (p *Podman) ping(ctx context.Context) (http.Header, error) {
	client, err := bindings.GetClient(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := client.DoRequest(ctx, nil, http.MethodGet, "/_ping", nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if !resp.IsSuccess() {
		return nil, fmt.Errorf("podman answered /_ping with %s", resp.Status)
	}
	return resp.Header, nil
}
