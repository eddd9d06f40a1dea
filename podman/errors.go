package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/errorhandling"
	"github.com/moby/sys/user"
	"github.com/podman-worker/podman-worker/fault"
	storagetypes "go.podman.io/storage/types"
)

// rule is one row of the table below: a failure Podman reports, and what
// it means for the worker's caller.
type rule struct {
	// cause is libpod's or storage's error value as Podman names it in an
	// API error's "cause" (errorhandling.ErrorModel.Because): the
	// innermost error, which says more than the message around it.
	cause error
	// because, for rows without a fixed cause, matches Podman's cause by
	// its text; its first group is the value named in the message.
	because *regexp.Regexp
	// field is the param at fault, for InvalidParams rows.
	field string
	// status is the HTTP status of Podman's answer, for rows without a cause.
	status int
	kind   fault.Kind
	// exitCode, when set, is the exit code `podman run` reports for it.
	exitCode int
	why      string
}

// rules is the ONE table from Podman's errors to the worker's kinds. The
// first matching row wins: causes first, then statuses. Errors of no row
// are PodmanError (500), with Podman's own message.
var rules = []rule{
	{cause: define.ErrNoSuchCtr, kind: fault.KindNotFound,
		why: "the container does not exist (some endpoints answer 500 with this cause)"},
	{cause: storagetypes.ErrImageUnknown, kind: fault.KindNotFound,
		why: "the image does not exist (some endpoints answer 500 with this cause)"},
	{cause: define.ErrNoSuchExecSession, kind: fault.KindNotFound,
		why: "the exec session is gone (Podman removed it, or it never started)"},
	{cause: define.ErrCtrStateInvalid, kind: fault.KindConflict,
		why: "the container is in the wrong state: not running for exec or kill, between states for removal (retried there)"},
	{cause: define.ErrCtrStopped, kind: fault.KindConflict,
		why: "the container is not running"},
	{cause: define.ErrCtrExists, kind: fault.KindConflict,
		why: "a container of that name exists"},
	{cause: storagetypes.ErrDuplicateName, kind: fault.KindConflict,
		why: "the name is taken in Podman's storage"},
	{cause: storagetypes.ErrImageUsedByContainer, kind: fault.KindConflict,
		why: "a container uses the image: removing it needs force"},
	{cause: define.ErrOCIRuntimeNotFound, kind: fault.KindExecutionFailed, exitCode: 127,
		why: "the command does not exist in the image: podman run reports 127"},
	{cause: define.ErrOCIRuntimePermissionDenied, kind: fault.KindExecutionFailed, exitCode: 126,
		why: "the command cannot be executed: podman run reports 126"},
	{cause: user.ErrNoPasswdEntries, kind: fault.KindInvalidParams,
		why: "the user a caller named does not exist in the container"},
	{cause: user.ErrNoGroupEntries, kind: fault.KindInvalidParams,
		why: "the group a caller named does not exist in the container"},
	{because: regexp.MustCompile(`^workdir "(.*)" does not exist on container`), kind: fault.KindInvalidParams, field: "workdir",
		why: "the workdir a caller named is not in the image (Podman says so only when it attaches)"},
	{status: http.StatusNotFound, kind: fault.KindNotFound,
		why: "Podman found nothing of that name"},
	{status: http.StatusConflict, kind: fault.KindConflict,
		why: "Podman refused because of the object's state"},
	{status: http.StatusBadRequest, kind: fault.KindInvalidParams,
		why: "Podman refused a value the worker passed on from the caller"},
}

// quoted finds the name Podman quotes in its messages.
var quoted = regexp.MustCompile(`"([^"]+)"`)

// Classify turns an error from the bindings into a *fault.Error through the
// table. Errors that are already classified, and a call's own cancellation
// or deadline, pass through; a service that cannot be reached is
// Unavailable (and the next call probes the socket before trying again).
func (c *Client) Classify(err error) error {
	if err == nil {
		return nil
	}
	var rerr *fault.Error
	if errors.As(err, &rerr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var regErr *registryError
	if errors.As(err, &regErr) {
		return classifyRegistry(regErr)
	}
	if model, r := match(err); r != nil {
		e := fault.Wrap(r.kind, err, "%s", scrub(message(model, r)))
		if r.exitCode != 0 {
			e.With("exit_code", r.exitCode)
		}
		if r.field != "" {
			e.With("field", r.field)
		}
		return e
	}
	if unreachable(err) {
		c.down.Store(true)
		return c.unavailable(err)
	}
	var model *errorhandling.ErrorModel
	if errors.As(err, &model) {
		return fault.Wrap(fault.KindPodman, err, "%s", scrub(model.Error()))
	}
	return fault.Wrap(fault.KindPodman, err, "%s", scrub(err.Error()))
}

// Podman's messages name its own host paths (a volume's _data, an
// overlay's merged folder, /var/tmp/libpod_builderN) and other owners'
// containers by id ("already in use by <id>"). Every message that reaches
// a caller through Classify passes through scrub: a path of Podman's
// storage or temp becomes "<podman storage>", a full 64-hex id becomes
// "<id>". The full error stays in the worker's own log.
var (
	hostPath       = regexp.MustCompile(`(^|[\s"'=(\[])(/[^\s"'(),\]]+)`)
	fullID         = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	storageMarkers = []string{"/overlay", "/volumes/", "/_data", "/merged", "/userdata", "/containers/storage",
		"libpod_builder", "/libpod/", "container_images_", "/vfs-", "/buildah", "/storage/"}
)

// Scrub is scrub for messages a handler builds from Podman's text itself
// (a build's failure).
func Scrub(msg string) string { return scrub(msg) }

func scrub(msg string) string {
	msg = hostPath.ReplaceAllStringFunc(msg, func(m string) string {
		lead, path := "", m
		if m[0] != '/' {
			lead, path = m[:1], m[1:]
		}
		for _, marker := range storageMarkers {
			if strings.Contains(path, marker) {
				return lead + "<podman storage>"
			}
		}
		return m
	})
	return fullID.ReplaceAllString(msg, "<id>")
}

// KindOf is Classify's kind, for code that branches on it.
func (c *Client) KindOf(err error) fault.Kind {
	return fault.As(c.Classify(err)).Kind
}

// match finds err's row of the table.
func match(err error) (*errorhandling.ErrorModel, *rule) {
	var model *errorhandling.ErrorModel
	if !errors.As(err, &model) {
		return nil, nil
	}
	for i, r := range rules {
		if r.cause != nil && model.Because == r.cause.Error() || r.because != nil && r.because.MatchString(model.Because) {
			return model, &rules[i]
		}
	}
	for i, r := range rules {
		if r.cause == nil && model.Code() == r.status {
			return model, &rules[i]
		}
	}
	return model, nil
}

// message is Podman's message, in one form whichever version answered.
func message(model *errorhandling.ErrorModel, r *rule) string {
	msg := model.Error()
	switch r.cause {
	case define.ErrNoSuchCtr:
		// Podman 4 says "no container with name or ID", 5 "with ID or
		// name": callers get one text whichever answered.
		if m := quoted.FindStringSubmatch(msg); m != nil {
			return fmt.Sprintf("no such container: %s", m[1])
		}
	case storagetypes.ErrImageUnknown:
		// Podman 5 prefixes "no such image: "; 4 does not.
		return strings.TrimPrefix(msg, "no such image: ")
	case define.ErrOCIRuntimeNotFound, define.ErrOCIRuntimePermissionDenied:
		return "Container execution failed: " + model.Because
	}
	if r.field == "workdir" {
		dir := r.because.FindStringSubmatch(model.Because)[1]
		return fmt.Sprintf("Invalid params: \"workdir\" %q does not exist in the image: give a folder the image has, or no workdir for the image's own", dir)
	}
	return msg
}

// unreachable says whether err means the service could not be reached or
// went away in the middle of an answer.
func unreachable(err error) bool {
	var opErr *net.OpError
	var connErr bindings.ConnectError
	var urlErr *url.Error
	return errors.As(err, &opErr) || errors.As(err, &connErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || // the bindings' "server probably quit"
		// The HTTP client's own: the service closed the connection before
		// it answered (it was killed while the request was on its way).
		errors.As(err, &urlErr) && errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
