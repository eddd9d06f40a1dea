// Package fault is podman-worker's error vocabulary: the kinds of failure a
// call can end in and the one error type that carries a kind, a message a
// person reads and data fields for a program. Every layer may import it
// (limits/ judges params, podman/ classifies Podman's answers, handlers/
// shape results), and it imports nothing of the worker's, so no layer
// reaches up to the transport for its errors.
//
// How a kind looks on the wire (a JSON-RPC code, the seed REST API's type
// and an HTTP-style status) is the transport's business: rpc/errors.go
// holds that table. A handler picks a Kind, never a number.
package fault
