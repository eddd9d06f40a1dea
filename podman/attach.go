package podman

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// Attach connects to a container's output before it starts, so nothing it
// prints is missed and no log file is read afterwards. The returned channel
// closes when the output ends, which is the first sign that the process
// exited: measured here, ~1 ms after start returns for a process that exits
// at once, where Podman's wait endpoint answers 30-160 ms later because it
// must take the container's lock, which the cleanup process conmon starts
// holds for tens of milliseconds. Attaching also makes Podman create the
// container's process (runc create), so a command that cannot run fails
// here, or else at start. stdin, when not nil, is copied to the
// container's standard input, which is closed at its end; no byte of it
// is taken as a detach key.
func (c *Client) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer) (<-chan struct{}, error) {
	actx, release, err := privateConnection(ctx)
	if err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	ended := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(ended)
		defer release()
		opts := new(containers.AttachOptions).WithStream(true)
		if stdin != nil {
			opts.WithDetachKeys("")
		}
		err := containers.Attach(actx, id, stdin, stdout, stderr, ready, opts)
		if err != nil {
			failed <- err
		}
	}()
	select {
	case <-ready:
		return ended, nil
	case err := <-failed:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// privateConnection returns ctx carrying a private copy of the bindings
// connection, and a release func to call once the attach is over.
//
// Why: Attach and ExecStartAndAttach replace conn.Client.Transport to
// capture the hijacked socket. On the worker's shared connection that is a
// data race with every concurrent call, throws away the tuned transport and
// nests one more dial wrapper per call. The copy also records every socket
// it dials, so cancelling ctx closes them: Go's HTTP client stops watching
// the context once a response switches protocols, so nothing else would
// interrupt a read blocked on a silent command.
func privateConnection(ctx context.Context) (context.Context, func(), error) {
	shared, err := bindings.GetClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	rt := shared.Client.Transport
	if nb, ok := rt.(*noBlindRetry); ok {
		rt = nb.next
	}
	base, ok := rt.(*http.Transport)
	if !ok || base.DialContext == nil {
		return nil, nil, fmt.Errorf("the Podman connection has an unexpected transport %T", shared.Client.Transport)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	tr := base.Clone()
	dial := base.DialContext
	tr.DialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			_ = c.Close()
			return nil, net.ErrClosed
		}
		conns = append(conns, c)
		return c, nil
	}
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
	}
	client := *shared.Client
	client.Transport = tr
	private := *shared
	private.Client = &client
	stop := context.AfterFunc(ctx, closeAll)
	release := func() {
		stop()
		closeAll()
	}
	return swapConnection{Context: ctx, shared: shared, private: &private}, release, nil
}

// swapConnection answers the private connection wherever ctx would answer
// the shared one; the bindings' context key is unexported, so the value is
// swapped rather than the key reused.
type swapConnection struct {
	context.Context
	shared, private *bindings.Connection
}

func (c swapConnection) Value(key any) any {
	v := c.Context.Value(key)
	if conn, ok := v.(*bindings.Connection); ok && conn == c.shared {
		return c.private
	}
	return v
}
