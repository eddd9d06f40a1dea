package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sourcegraph/jsonrpc2"
)

// Kind classifies an error. Handlers pick a Kind, never a number: the table
// below is the only place that turns a kind into a JSON-RPC code, the
// seed REST API's `type` and its HTTP-style `status`.
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
)

type kindInfo struct {
	code   int64
	typ    string
	status int
}

// codes is the one table from kind to wire values. Server errors use the
// JSON-RPC range -32000..-32099, ending in the HTTP status where one fits
// (-32004 NotFound, -32009 Conflict); cancellation uses LSP's -32800.
var codes = map[Kind]kindInfo{
	KindInternal:        {jsonrpc2.CodeInternalError, "InternalError", 500},
	KindParse:           {jsonrpc2.CodeParseError, "ParseError", 400},
	KindInvalidRequest:  {jsonrpc2.CodeInvalidRequest, "InvalidRequest", 400},
	KindTooLarge:        {jsonrpc2.CodeInvalidRequest, "TooLarge", 413},
	KindMethodNotFound:  {jsonrpc2.CodeMethodNotFound, "MethodNotFound", 404},
	KindInvalidParams:   {jsonrpc2.CodeInvalidParams, "BadRequest", 400},
	KindForbidden:       {jsonrpc2.CodeInvalidParams, "Forbidden", 403},
	KindNotFound:        {-32004, "NotFound", 404},
	KindConflict:        {-32009, "Conflict", 409},
	KindTimeout:         {-32008, "Timeout", 408},
	KindUnavailable:     {-32003, "Unavailable", 503},
	KindPodman:          {-32000, "PodmanError", 500},
	KindCancelled:       {-32800, "Cancelled", 499},
	KindExecutionFailed: {-32010, "ExecutionFailed", 500},
	// Busy is the one error a caller should simply retry: the call was
	// refused before anything ran, because the calls already waiting hit
	// --max-queued or --max-queued-bytes. 429 is HTTP's Too Many Requests.
	KindBusy: {-32029, "Busy", 429},
	// Unauthorized is a registry's answer, never the worker's: the
	// credentials a pull or push sent (or the operator's auth file) were
	// refused. It ends in 401, as NotFound ends in 404.
	KindUnauthorized: {-32001, "Unauthorized", 401},
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

// Type is the seed REST API's error type for this kind, e.g. "NotFound".
func (e *Error) Type() string { return codes[e.Kind].typ }

// Status is the HTTP-style status for this kind, e.g. 404.
func (e *Error) Status() int { return codes[e.Kind].status }

// Code is the JSON-RPC error code for this kind.
func (e *Error) Code() int64 { return codes[e.Kind].code }

// Errorf makes an *Error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
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

// Wrap makes an *Error of kind k whose cause is err.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// AsError turns any error into an *Error: an *Error anywhere in the chain is
// used as it is, a context deadline becomes a Timeout, a cancellation
// becomes Cancelled, and anything else is an internal error.
func AsError(err error) *Error {
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

// wire renders e as a JSON-RPC error object. `data` always carries type and
// status, so a client can branch on them without parsing the message.
func (e *Error) wire() *jsonrpc2.Error {
	info := codes[e.Kind]
	data := make(map[string]any, len(e.Fields)+2)
	for k, v := range e.Fields {
		data[k] = v
	}
	data["type"] = info.typ
	data["status"] = info.status
	raw, err := Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(map[string]any{"type": info.typ, "status": info.status})
	}
	msg := json.RawMessage(raw)
	return &jsonrpc2.Error{Code: info.code, Message: e.Message, Data: &msg}
}
