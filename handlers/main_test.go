package handlers

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/rs/zerolog"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
	"github.com/podman-worker/podman-worker/podman/podmantest"
	"github.com/podman-worker/podman-worker/rpc"
)

// These tests drive the handlers against a real, private Podman service
// (podmantest), through the same params decoding and error mapping the
// worker uses. The service starts on first use, so the package's unit tests
// still run alone without Podman.

var (
	envOnce sync.Once
	env     *podmanEnv
	envErr  error
)

type podmanEnv struct {
	svc  *podmantest.Service
	s    *Service        // the handlers under test
	conn context.Context // a bindings connection of the test's own, for setup and checks
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		// Stop removes any container a failed test left behind first.
		if err := env.svc.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// podmanTest returns the shared private service, starting it on first use.
func podmanTest(t *testing.T) *podmanEnv {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		svc, err := podmantest.Start(ctx)
		if err != nil {
			envErr = err
			return
		}
		e := &podmanEnv{svc: svc}
		env = e // TestMain stops it from here on
		if envErr = podmantest.EnsureBusybox(ctx, svc.URI); envErr != nil {
			return
		}
		client, err := podman.New(svc.URI, podman.Options{MaxConns: 4, PID: os.Getpid(), SharedImages: []string{podmantest.BusyboxImage}, Log: zerolog.Nop()})
		if err != nil {
			envErr = err
			return
		}
		conns, err := podman.NewConnections(podman.DefaultName, client)
		if err != nil {
			envErr = err
			return
		}
		e.s = New(conns, zerolog.Nop(), Options{})
		e.conn, envErr = bindings.NewConnection(context.Background(), svc.URI)
	})
	if envErr != nil {
		t.Fatalf("private podman service: %v", envErr)
	}
	return env
}

var containerSeq atomic.Int32

// container creates a busybox container (no network) that lives for the
// test, started or only created.
func (e *podmanEnv) container(t *testing.T, start bool) string {
	t.Helper()
	sg := specgen.NewSpecGenerator(podmantest.BusyboxImage, false)
	sg.Name = fmt.Sprintf("host-test-%d", containerSeq.Add(1))
	sg.Command = []string{"sleep", "600"}
	sg.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	// Labelled as the handlers' own: they act on nothing else.
	sg.Labels = e.s.identity.Labels(true)
	r, err := containers.CreateWithSpec(e.conn, sg, nil)
	if err != nil {
		t.Fatalf("creating a container: %v", err)
	}
	t.Cleanup(func() {
		_, _ = containers.Remove(e.conn, r.ID, new(containers.RemoveOptions).WithForce(true).WithTimeout(0))
	})
	if start {
		if err := containers.Start(e.conn, r.ID, nil); err != nil {
			t.Fatalf("starting %s: %v", sg.Name, err)
		}
	}
	return sg.Name
}

// call runs method m the way the worker does: raw params through
// adapt. It answers the result as JSON, or the error.
func call(ctx context.Context, m rpc.Method, params string) (json.RawMessage, error) {
	res, err := m(ctx, json.RawMessage(params))
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// mustCall fails the test unless the call succeeds, and decodes its result.
func mustCall[R any](t *testing.T, m rpc.Method, params string) R {
	t.Helper()
	raw, err := call(context.Background(), m, params)
	if err != nil {
		t.Fatalf("%s: %v", params, err)
	}
	var r R
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: decoding %s: %v", params, raw, err)
	}
	return r
}

// wantError fails the test unless the call fails with kind (and, when field
// is not "", names that field). It answers the error.
func wantError(t *testing.T, m rpc.Method, params string, kind fault.Kind, field string) *fault.Error {
	t.Helper()
	raw, err := call(context.Background(), m, params)
	var rerr *fault.Error
	if !errors.As(err, &rerr) {
		t.Fatalf("%s: got %s, %v; want a %s error", params, raw, err, kind)
	}
	if rerr.Kind != kind || (field != "" && rerr.Fields["field"] != field) {
		t.Fatalf("%s: got %s error %q (fields %v); want %s naming %q",
			params, rerr.Kind, rerr.Message, rerr.Fields, kind, field)
	}
	return rerr
}

// q quotes a value as JSON, for building params.
func q(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// readBack reads one file of a container through the archive download,
// independently of the handlers.
func (e *podmanEnv) readBack(t *testing.T, name, file string) (*tar.Header, []byte) {
	t.Helper()
	var buf bytes.Buffer
	copyFn, err := containers.CopyToArchive(e.conn, name, file, &buf)
	if err == nil {
		err = copyFn()
	}
	if err != nil {
		t.Fatalf("reading %s back: %v", file, err)
	}
	tr := tar.NewReader(&buf)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("reading %s back: %v", file, err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("reading %s back: %v", file, err)
	}
	return hdr, data
}

type execOut struct {
	ExitCode        int    `json:"exit_code"`
	Output          string `json:"output"`
	Success         bool   `json:"success"`
	OutputTruncated bool   `json:"output_truncated"`
}
