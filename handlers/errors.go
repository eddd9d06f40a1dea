package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/errorhandling"
	storagetypes "go.podman.io/storage/types"

	"github.com/podman-worker/podman-worker/rpc"
)

// quoted finds the name Podman quotes in its messages.
var quoted = regexp.MustCompile(`"([^"]+)"`)

// fromPodman classifies an error from the bindings. Podman's own errors
// carry the HTTP status of its API (errorhandling.ErrorModel), which says
// more than any message text; connection failures become Unavailable.
func (p *Podman) fromPodman(err error) error {
	if err == nil {
		return nil
	}
	var rerr *rpc.Error
	if errors.As(err, &rerr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var model *errorhandling.ErrorModel
	if errors.As(err, &model) {
		msg := model.Error()
		// Podman answers some well-known failures with a 500 whose
		// machine-readable cause is one of libpod's error values.
		switch model.Because {
		case define.ErrNoSuchCtr.Error():
			// Podman 4 says "no container with name or ID", 5 "with ID or
			// name": callers get one text whichever answered.
			if m := quoted.FindStringSubmatch(msg); m != nil {
				msg = fmt.Sprintf("no such container: %s", m[1])
			}
			return rpc.Wrap(rpc.KindNotFound, err, "%s", msg)
		case storagetypes.ErrImageUnknown.Error():
			// Podman 5 prefixes "no such image: "; 4 does not.
			return rpc.Wrap(rpc.KindNotFound, err, "%s", strings.TrimPrefix(msg, "no such image: "))
		case define.ErrCtrStateInvalid.Error(), define.ErrCtrExists.Error(), storagetypes.ErrDuplicateName.Error():
			return rpc.Wrap(rpc.KindConflict, err, "%s", msg)
		}
		switch model.Code() {
		case http.StatusNotFound:
			return rpc.Wrap(rpc.KindNotFound, err, "%s", msg)
		case http.StatusConflict:
			return rpc.Wrap(rpc.KindConflict, err, "%s", msg)
		case http.StatusBadRequest:
			return rpc.Wrap(rpc.KindInvalidParams, err, "%s", msg)
		}
		return rpc.Wrap(rpc.KindPodman, err, "%s", msg)
	}
	if isConnectionError(err) {
		p.down.Store(true)
		return p.unavailable(err)
	}
	return rpc.Wrap(rpc.KindPodman, err, "%s", err.Error())
}
