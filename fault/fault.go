package fault

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an error.
type Kind int

const (
	KindInternal        Kind = iota // a bug or an unexpected failure in the worker itself
	KindParse                       // the line is not JSON
	KindInvalidRequest              // JSON, but not a JSON-RPC 2.0 request
	KindTooLarge                    // the line is longer than the configured maximum
	KindMethodNotFound              // no such method
	KindInvalidParams               // params of the wrong shape, a missing or bad field
	KindForbidden                   // valid, but outside the worker's policy (limits ceilings)
	KindNotFound                    // the image/container named does not exist
	KindConflict                    // the object exists or is in the wrong state
	KindTimeout                     // the call ran past its deadline
	KindUnavailable                 // Podman cannot be reached
	KindPodman                      // Podman answered with an error the worker cannot classify further
	KindCancelled                   // $/cancelRequest or shutdown cancelled the call
	KindExecutionFailed             // the container ran and exited non-zero
	KindBusy                        // the queue is full: nothing was done, retry later
	KindUnauthorized                // a registry refused the credentials sent (or wants some)
	numKinds                        // keep last: Kinds lists every kind above
)

// Kinds lists every kind, for tables that must cover them all (the
// transport's wire table is tested against it).
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for k := range out {
		out[k] = Kind(k)
	}
	return out
}

// Error is the one application error type. Message is what a person reads;
// Fields are merged into the error's `data` next to `type` and `status`
// (for example exit_code and stdout of a failed container run).
type Error struct {
	Kind    Kind
	Message string
	Fields  map[string]any
	Err     error // the cause, for logs and errors.Is; never sent on the wire
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap makes an *Error of kind k whose cause is err.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// With returns e with one more data field; it is meant for building an
// error in one expression.
func (e *Error) With(key string, value any) *Error {
	if e.Fields == nil {
		e.Fields = map[string]any{}
	}
	e.Fields[key] = value
	return e
}

// Param is the error of kind k (InvalidParams or Forbidden) about one
// param: the message leads with the kind ("Invalid params: …",
// "Forbidden: …") and the data carries the param as `field`, so a caller
// can point at it without parsing the text.
func Param(k Kind, field, format string, args ...any) *Error {
	lead := "Invalid params: "
	if k == KindForbidden {
		lead = "Forbidden: "
	}
	return Errorf(k, lead+format, args...).With("field", field)
}

// Invalid is Param's InvalidParams with the param named first:
// `Invalid params: "memory": …`.
func Invalid(field, format string, args ...any) *Error {
	return Param(KindInvalidParams, field, "%q: "+format, append([]any{field}, args...)...)
}

// Forbidden is Param's Forbidden with the param named first:
// `Forbidden: "cpus": …`: valid, but past what the operator allows.
func Forbidden(field, format string, args ...any) *Error {
	return Param(KindForbidden, field, "%q: "+format, append([]any{field}, args...)...)
}

// As turns any error into an *Error: an *Error anywhere in the chain is
// used as it is, a context deadline becomes a Timeout, a cancellation
// becomes Cancelled, and anything else is an internal error.
func As(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return Wrap(KindTimeout, err, "the call ran past its deadline: %v", err)
	case errors.Is(err, context.Canceled):
		return Wrap(KindCancelled, err, "Request cancelled")
	default:
		return Wrap(KindInternal, err, "internal error: %v", err)
	}
}

var kindNames = [numKinds]string{
	KindInternal: "Internal", KindParse: "Parse", KindInvalidRequest: "InvalidRequest", KindTooLarge: "TooLarge",
	KindMethodNotFound: "MethodNotFound", KindInvalidParams: "InvalidParams", KindForbidden: "Forbidden",
	KindNotFound: "NotFound", KindConflict: "Conflict", KindTimeout: "Timeout", KindUnavailable: "Unavailable",
	KindPodman: "Podman", KindCancelled: "Cancelled", KindExecutionFailed: "ExecutionFailed", KindBusy: "Busy",
	KindUnauthorized: "Unauthorized",
}

// String is the kind's Go name less "Kind", for logs and test messages;
// what a caller sees is the wire type (rpc.Type), which can differ
// (InvalidParams is "BadRequest" there).
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}
