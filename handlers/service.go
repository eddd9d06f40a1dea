// Package handlers implements the worker's methods: one file per command
// group, each handler decoding its params, calling Podman through the
// bindings and shaping the seed's result.
package handlers

import (
	"context"
	"encoding/json"

	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/rpc"
)

// Service holds what handlers share: the warm Podman connection.
type Service struct {
	podman *Podman
	log    zerolog.Logger
}

// New returns the handlers for a Podman connection.
func New(p *Podman, log zerolog.Logger) *Service {
	return &Service{podman: p, log: log}
}

// Methods lists every method the worker answers, in one place.
func (s *Service) Methods() map[string]rpc.Method {
	return map[string]rpc.Method{
		// system.go
		"ping":    podmanMethod(s, s.ping),
		"version": podmanMethod(s, s.version),
		"info":    podmanMethod(s, s.info),
		// images.go, build.go
		"build":   podmanMethod(s, s.build),
		"images":  podmanMethod(s, s.images),
		"exists":  podmanMethod(s, s.exists),
		"inspect": podmanMethod(s, s.inspect),
		"rmi":     podmanMethod(s, s.rmi),
		"prune":   podmanMethod(s, s.prune),
	}
}

// podmanMethod adapts a typed handler: it decodes params into P (refusing
// unknown and missing fields), hands the handler a context that carries the
// Podman connection, and classifies what Podman answered.
func podmanMethod[P any](s *Service, fn func(ctx context.Context, p P) (any, error)) rpc.Method {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p P
		if err := rpc.DecodeParams(raw, &p); err != nil {
			return nil, err
		}
		pctx, err := s.podman.Context(ctx)
		if err != nil {
			return nil, err
		}
		res, err := fn(pctx, p)
		return res, s.podman.fromPodman(err)
	}
}

// noParams is the params of methods that take none; anything sent is refused.
type noParams struct{}
