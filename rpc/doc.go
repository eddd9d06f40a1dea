// Package rpc serves JSON-RPC 2.0 for podman-worker: over newline-delimited
// lines on a stream (Server.Serve, the worker's stdin and stdout), and in
// process for other transports (Server.Call). Handlers are Methods in one
// map; everything between the bytes and a handler is here.
//
// What this package owns:
//
//   - Framing (stream.go): lines of at most MaxLineBytes (a longer one is
//     skipped in bounded memory and answered TooLarge); each line is
//     validated once (json.Valid, UTF-8) and its requests read by a
//     scanner (request.go) that keeps every JSON-RPC 2.0 rule: "jsonrpc"
//     exactly "2.0", an id that is a string, number or null, a string
//     method, object or array params, each member named once. A line that
//     is not JSON answers -32700, anything else invalid -32600, and
//     reading goes on. Every line written is one Write, valid UTF-8 JSON.
//   - Batches: a batch line is read one entry at a time, so its entries
//     meet the queue's bounds one by one, and their replies are joined
//     into one array on one line once the last is answered. A batch with
//     more entries than MaxWorkers+MaxQueued is refused whole.
//   - Ids and params: a reply carries the caller's id byte for byte (1.0,
//     1e2 and ids beyond 2^53 included); params reach the handler as sent.
//     Each request is parsed once, by the scanner.
//   - Registry (registry.go): the calls not yet answered, by the caller's
//     id: a second call with an id in flight is refused, and
//     $/cancelRequest finds the call it names.
//   - Queue (pool.go): at most MaxWorkers long-lived workers take calls in
//     arrival order from one FIFO, bounded by MaxQueued calls and
//     MaxQueuedBytes bytes; past either, a call is answered Busy at once
//     and reading never stops. Control methods (Options.Control) and
//     $/cancelRequest do not queue.
//   - Cancellation: $/cancelRequest, Shutdown and the caller's context
//     (Server.Call) cancel a call's context; a cancelled call answers
//     -32800, a queued one at once.
//   - The wire table (errors.go): an error's kind (package fault, the
//     vocabulary every layer imports) to its code, type and status, in
//     one place; handlers pick a Kind, never a number.
//   - Params decoding (params.go): DecodeParams, errors that name the field.
//   - Metrics (metrics.go): per-method counts and recent durations, fed by
//     Options.Observe.
//
// What github.com/sourcegraph/jsonrpc2 gives: the protocol's error codes
// and error object (errors.go) and the encoding of notifications
// (Server.Notify). It is not in the request path: its Conn closes on the
// first message it cannot decode, takes "id": null for a notification,
// knows no batches and turns a negative id into a huge unsigned one, so
// the framing above was always this package's; and its read loop decoded
// each request a second time (a stand-in message, into maps), 16 µs of
// the worker's ~70 µs share of a ping. The read loop (readLoop) is a few
// lines of this package. The tests drive Serve with the library's Conn as
// a client (TestLibraryClient): a Go caller can use it as it is.
//
// Goroutines: the read loop, MaxWorkers workers
// (started with Serve, or as Call needs them; they end when Serve returns
// or Shutdown is done), one per running control call (at most 16), and one
// per queued call cancelled (for an instant). None is left once Serve has
// returned, except, when its input cannot be interrupted (it has no
// SetReadDeadline), the read loop, until its read returns and it drops
// what it read.
//
// Memory is bounded whatever a client sends: the line being read
// (MaxLineBytes, twice while a long line is joined), the waiting calls
// (MaxQueuedBytes), and one request for each running call.
package rpc
