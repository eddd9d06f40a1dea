package rpc

import (
	"encoding/json"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/sourcegraph/jsonrpc2"
)

type kindInfo struct {
	code   int64
	typ    string
	status int
}

// codes is the one table from an error's kind (package fault) to its wire
// values: the JSON-RPC code, the seed REST API's `type` and its HTTP-style
// `status`. Server errors use the JSON-RPC range -32000..-32099, ending in
// the HTTP status where one fits (-32004 NotFound, -32009 Conflict);
// cancellation uses LSP's -32800.
var codes = map[fault.Kind]kindInfo{
	fault.KindInternal:        {jsonrpc2.CodeInternalError, "InternalError", 500},
	fault.KindParse:           {jsonrpc2.CodeParseError, "ParseError", 400},
	fault.KindInvalidRequest:  {jsonrpc2.CodeInvalidRequest, "InvalidRequest", 400},
	fault.KindTooLarge:        {jsonrpc2.CodeInvalidRequest, "TooLarge", 413},
	fault.KindMethodNotFound:  {jsonrpc2.CodeMethodNotFound, "MethodNotFound", 404},
	fault.KindInvalidParams:   {jsonrpc2.CodeInvalidParams, "BadRequest", 400},
	fault.KindForbidden:       {jsonrpc2.CodeInvalidParams, "Forbidden", 403},
	fault.KindNotFound:        {-32004, "NotFound", 404},
	fault.KindConflict:        {-32009, "Conflict", 409},
	fault.KindTimeout:         {-32008, "Timeout", 408},
	fault.KindUnavailable:     {-32003, "Unavailable", 503},
	fault.KindPodman:          {-32000, "PodmanError", 500},
	fault.KindCancelled:       {-32800, "Cancelled", 499},
	fault.KindExecutionFailed: {-32010, "ExecutionFailed", 500},
	// Busy is the one error a caller should simply retry: the call was
	// refused before anything ran, because the calls already waiting hit
	// --max-queued or --max-queued-bytes. 429 is HTTP's Too Many Requests.
	fault.KindBusy: {-32029, "Busy", 429},
	// Unauthorized is a registry's answer, never the worker's: the
	// credentials a pull or push sent (or the operator's auth file) were
	// refused. It ends in 401, as NotFound ends in 404.
	fault.KindUnauthorized: {-32001, "Unauthorized", 401},
}

// Type is the seed REST API's error type for kind k, e.g. "NotFound".
func Type(k fault.Kind) string { return codes[k].typ }

// Status is the HTTP-style status for kind k, e.g. 404.
func Status(k fault.Kind) int { return codes[k].status }

// Code is the JSON-RPC error code for kind k.
func Code(k fault.Kind) int64 { return codes[k].code }

// wire renders e as a JSON-RPC error object. `data` always carries type and
// status, so a client can branch on them without parsing the message.
func wire(e *fault.Error) *jsonrpc2.Error {
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
