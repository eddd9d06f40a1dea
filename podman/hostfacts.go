package podman

import (
	"context"
	"errors"
	"sync"

	"github.com/containers/podman/v5/pkg/bindings/system"
)

// hostFacts are what the sandbox needs to know about Podman's host: how it
// makes cgroups (for build cgroups) and where it keeps its storage (which
// no container may mount). They do not change while the service runs, and
// info is slow (~200 ms on Podman 4.3), so they are read once, when first
// needed.
type hostFacts struct {
	cgroupManager string
	storePaths    []string
}

type factsCache struct {
	mu    sync.Mutex
	facts *hostFacts
}

func (c *Client) hostFacts(ctx context.Context) (*hostFacts, error) {
	c.facts.mu.Lock()
	defer c.facts.mu.Unlock()
	if c.facts.facts != nil {
		return c.facts.facts, nil
	}
	info, err := system.Info(ctx, nil)
	if err != nil {
		return nil, err
	}
	if info.Host == nil || info.Store == nil {
		return nil, errors.New("podman's info has no host or store section")
	}
	f := &hostFacts{cgroupManager: info.Host.CgroupManager}
	for _, p := range []string{info.Store.GraphRoot, info.Store.RunRoot, info.Store.VolumePath, info.Store.ConfigFile} {
		if p != "" {
			f.storePaths = append(f.storePaths, p)
		}
	}
	c.facts.facts = f
	return f, nil
}

// StorePaths are Podman's storage folders (images and containers, their
// run state, named volumes) and its storage.conf, as Podman reports them. On a Podman across
// tcp they name folders of another host and are answered all the same.
func (c *Client) StorePaths(ctx context.Context) ([]string, error) {
	f, err := c.hostFacts(ctx)
	if err != nil {
		return nil, err
	}
	return f.storePaths, nil
}
