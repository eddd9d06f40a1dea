package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/fault"
)

// stream is the newline-delimited wire: it reads lines, enforces every
// rule of JSON-RPC 2.0 framing, and writes replies. next returns the
// valid requests one at a time, in order, for the read loop to dispatch;
// everything else is answered here:
//   - a line that is not JSON is answered with -32700 and reading goes on;
//   - JSON that is not a request is answered with -32600 and id null;
//   - a batch is split into single requests, read one at a time, and
//     their replies are joined back into one array on one line once the
//     last of them is answered;
//   - the caller's exact id bytes are repeated on every reply.
type stream struct {
	r        *lineReader
	w        *lineWriter
	calls    *registry
	ctx      context.Context // the parent of every call's context
	maxBatch int             // most entries a batch line may hold

	// The batch line being read, entry by entry: its requests are
	// registered one at a time, as the read loop asks for the next one,
	// so a batch never holds more calls than the queue lets through.
	batch   *batch
	entries entries

	// lineUTF8 says the line being read is valid UTF-8, which spares
	// each request of it a check of its own.
	lineUTF8 bool

	// stopped is set (under Server.mu, so that readLoop's check of it and
	// Serve's last drain cannot interleave) when Serve returns: whatever is
	// read after that is dropped, and reading ends.
	stopped atomic.Bool
	// ended is closed when next returns its last error (readErr):
	// the end of the input, a read error, or stopped.
	ended   chan struct{}
	readErr error
}

// end reports the last error next returns: the read loop ends on it.
func (s *stream) end(err error) error {
	s.readErr = err
	close(s.ended)
	return err
}

// next returns the next valid request, or the error that ends reading
// (io.EOF at the end of the input or once Serve has returned); protocol
// errors are answered here.
func (s *stream) next() (*call, error) {
	for {
		if s.stopped.Load() {
			return nil, s.end(io.EOF)
		}
		if s.batch != nil {
			if entry, ok := s.entries.next(); ok {
				if c := s.admit(entry, s.batch, false); c != nil {
					return c, nil
				}
				continue
			}
			s.seal(s.batch)
			s.batch = nil
		}
		line, owned, err := s.r.next()
		var tooLong *lineTooLongError
		switch {
		case s.stopped.Load():
			continue // read after Serve returned: dropped
		case errors.As(err, &tooLong):
			s.replyError(nullID, nil, fault.Errorf(fault.KindTooLarge,
				"Invalid Request: a line of %d bytes exceeds the %d-byte limit (--max-line-bytes); send large payloads in smaller pieces or raise the limit",
				tooLong.n, tooLong.max))
			continue
		case err != nil:
			return nil, s.end(err) // io.EOF at the end of the input
		}
		if c := s.handleLine(line, owned); c != nil {
			return c, nil
		}
	}
}

// reply sends c's one reply: e when it is set, else result. A result that
// cannot be encoded is answered as an internal error.
func (s *stream) reply(c *call, result any, e *fault.Error) error {
	if !s.calls.finish(c) {
		return fmt.Errorf("rpc: a second reply to %s", c.id)
	}
	var res, wireErr []byte
	var err error
	if e == nil {
		res, err = Marshal(result) // compacts: a reply is one line whatever a handler returns
		if err != nil {
			e = fault.Wrap(fault.KindInternal, err, "internal error: encoding the result of %s: %v", c.name, err)
		}
	}
	if e != nil {
		wireErr, _ = Marshal(wire(e))
	}
	return s.deliver(encodeResponse(c.id, res, wireErr), c.batch)
}

// handleLine reads one input line: a request is returned to be
// dispatched, a batch becomes the batch being read, and anything else is
// answered here. owned says the line is a fresh allocation that nothing
// else will write to, so a request may keep parts of it; otherwise it
// lives in the reader's buffer and what a request keeps is copied.
func (s *stream) handleLine(line []byte, owned bool) *call {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil // blank lines between messages are harmless
	}
	// One validation of the whole line; after it, the requests in it are
	// read with a scanner that needs only find where values end.
	if !json.Valid(line) {
		var discard struct{}
		s.replyError(nullID, nil, parseError(json.Unmarshal(line, &discard))) // the same scan, for its message
		return nil
	}
	s.lineUTF8 = utf8.Valid(line)
	switch line[0] {
	case '{':
		return s.admit(line, nil, owned)
	case '[':
		n := countEntries(line)
		switch {
		case n == 0:
			s.replyError(nullID, nil, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: an empty batch"))
		case n > s.maxBatch:
			// Refused whole: answering each entry beyond the bounds
			// would hold one error per entry until the batch's reply is
			// written (a 15 MiB line of tiny calls is 368,000 of them).
			s.replyError(nullID, nil, fault.Errorf(fault.KindInvalidRequest,
				"Invalid Request: a batch of %d entries exceeds the %d the worker can take at once (--max-workers plus --max-queued); send it in smaller batches",
				n, s.maxBatch))
		default:
			s.batch, s.entries = &batch{}, newEntries(line)
		}
		return nil
	default:
		s.replyError(nullID, nil, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: expected a request object or a batch array, got %s", JSONKind(line)))
		return nil
	}
}

// admit validates one request object. A valid request (call or
// notification) is returned, with a context of its own; anything else is
// answered at once. Each rule is JSON-RPC 2.0's; an error repeats the
// request's id when it has a usable one, and null otherwise.
func (s *stream) admit(raw []byte, b *batch, owned bool) *call {
	if raw[0] != '{' {
		s.replyError(nullID, b, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: a request must be a JSON object, got %s", JSONKind(raw)))
		return nil
	}
	r, dup := readMembers(raw)
	if dup != "" {
		s.replyError(nullID, b, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: member %q appears twice; a request names each member once", dup))
		return nil
	}
	if r.id != nil && !validID(r.id) {
		s.replyError(nullID, b, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: id must be a string, a number or null, got %s", JSONKind(r.id)))
		return nil
	}
	// JSON text is UTF-8 (RFC 8259), and every line the worker writes is
	// valid UTF-8 JSON: an id that is not cannot be repeated in a reply,
	// and other invalid bytes are refused rather than decoded, since
	// encoding/json would quietly turn them into U+FFFD (a file's content
	// or a command changed without the caller knowing).
	notUTF8 := !s.lineUTF8 && !utf8.Valid(raw)
	if notUTF8 && !utf8.Valid(r.id) {
		s.replyError(nullID, b, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: id is not valid UTF-8; JSON text must be UTF-8"))
		return nil
	}
	replyID := nullID
	if r.id != nil {
		replyID = r.id
	}
	if notUTF8 {
		s.replyError(replyID, b, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: the request is not valid UTF-8; JSON text must be UTF-8 (send binary data base64-encoded)"))
		return nil
	}
	if !bytes.Equal(r.version, []byte(`"2.0"`)) {
		s.replyError(replyID, b, fault.Errorf(fault.KindInvalidRequest, `Invalid Request: "jsonrpc" must be exactly "2.0"`))
		return nil
	}
	if r.method == nil || r.method[0] != '"' {
		s.replyError(replyID, b, fault.Errorf(fault.KindInvalidRequest, `Invalid Request: "method" must be a string`))
		return nil
	}
	if r.params != nil && r.params[0] != '{' && r.params[0] != '[' {
		s.replyError(replyID, b, fault.Errorf(fault.KindInvalidRequest, `Invalid Request: "params" must be an object or an array (omit it for none), got %s`, JSONKind(r.params)))
		return nil
	}

	if !owned {
		r.id, r.params = bytes.Clone(r.id), bytes.Clone(r.params)
	}
	c := &call{id: r.id, name: stringValue(r.method), params: r.params, weight: len(raw), out: s, batch: b}
	// The context exists before the call is registered, so a
	// $/cancelRequest that finds it can always cancel it.
	c.ctx, c.cancel = context.WithCancelCause(s.ctx)
	if !c.notif() {
		if !s.calls.add(c) {
			c.cancel(nil)
			s.replyError(r.id, b, fault.Errorf(fault.KindInvalidRequest, "Invalid Request: a call with id %s is still in flight; ids must be unique among calls in flight", r.id))
			return nil
		}
		if b != nil {
			b.mu.Lock()
			b.pending++
			b.mu.Unlock()
		}
	}
	return c
}

// replyError answers a message that is not a valid request.
func (s *stream) replyError(id json.RawMessage, b *batch, e *fault.Error) {
	wireErr, _ := Marshal(wire(e))
	if b != nil {
		b.mu.Lock()
		b.replies = append(b.replies, encodeResponse(id, nil, wireErr))
		b.mu.Unlock()
		return
	}
	s.w.writeLine(encodeResponse(id, nil, wireErr))
}

// seal marks b complete once its last entry is admitted, and writes it if
// every call in it is already answered (invalid entries are answered as
// they are read); otherwise its last reply writes it.
func (s *stream) seal(b *batch) {
	b.mu.Lock()
	b.sealed = true
	out := b.doneLocked()
	b.mu.Unlock()
	if out != nil {
		s.w.writeLine(out)
	}
}

// deliver writes a reply, or adds it to its batch and writes the batch once complete.
func (s *stream) deliver(resp []byte, b *batch) error {
	if b == nil {
		return s.w.writeLine(resp)
	}
	b.mu.Lock()
	b.replies = append(b.replies, resp)
	b.pending--
	out := b.doneLocked()
	b.mu.Unlock()
	if out == nil {
		return nil
	}
	return s.w.writeLine(out)
}

var nullID = json.RawMessage("null")

// encodeResponse writes a response with a fixed key order, so the bytes on
// the wire do not depend on map iteration.
func encodeResponse(id, result, wireErr json.RawMessage) []byte {
	var buf bytes.Buffer
	buf.Grow(len(id) + len(result) + len(wireErr) + 40)
	buf.WriteString(`{"jsonrpc":"2.0","id":`)
	buf.Write(id)
	if len(wireErr) > 0 {
		buf.WriteString(`,"error":`)
		buf.Write(wireErr)
	} else {
		buf.WriteString(`,"result":`)
		if len(result) == 0 {
			result = []byte("null")
		}
		buf.Write(result)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func validID(raw json.RawMessage) bool {
	switch JSONKind(raw) {
	case "a string", "a number", "null":
		return true
	}
	return false
}

func parseError(err error) *fault.Error {
	msg := "invalid JSON"
	if err != nil {
		msg = err.Error()
	}
	return fault.Errorf(fault.KindParse, "Parse error: %s", msg)
}

// batch collects the replies of one batch line.
type batch struct {
	mu      sync.Mutex
	pending int  // calls of this batch not yet answered
	sealed  bool // every entry of the line has been admitted
	replies [][]byte
	written bool
}

// doneLocked returns the batch's array once every call is answered, and
// nil before that or when there is nothing to send (a batch of
// notifications gets no reply at all).
func (b *batch) doneLocked() []byte {
	if !b.sealed || b.pending > 0 || b.written || len(b.replies) == 0 {
		return nil
	}
	b.written = true
	out := append([]byte{'['}, bytes.Join(b.replies, []byte{','})...)
	return append(out, ']')
}

// lineWriter writes whole lines, one Write each, so concurrent replies never
// interleave within a line. After the first failed write (the reader is
// gone) every write fails the same way, and onBroken runs once. After
// close, every write fails: Serve has returned and writes nothing more.
type lineWriter struct {
	mu       sync.Mutex
	w        io.Writer
	err      error
	buf      []byte
	onBroken func(error)
}

var errServeReturned = errors.New("rpc: Serve has returned; nothing more is written")

func (w *lineWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = errServeReturned
	}
	w.buf = nil
}

func (w *lineWriter) writeLine(b []byte) error {
	if !utf8.Valid(b) {
		// Requests with invalid UTF-8 are refused and strings are encoded
		// by encoding/json, which replaces invalid bytes; only a handler's
		// raw JSON result could carry some. Replaced the same way, inside
		// its strings (the only place JSON lets such bytes be), the line
		// stays valid JSON.
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.buf = append(append(w.buf[:0], b...), '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("rpc: writing to the output: %w", err)
		if w.onBroken != nil {
			go w.onBroken(w.err)
		}
		return w.err
	}
	if cap(w.buf) > 1<<20 {
		w.buf = nil // do not keep one huge reply's buffer for the life of the process
	}
	return nil
}

// lineReader reads newline-terminated lines of at most max bytes. A longer
// line is skipped in bounded memory and reported, and the next line reads
// normally.
type lineReader struct {
	br  *bufio.Reader
	max int
}

type lineTooLongError struct{ n, max int }

func (e *lineTooLongError) Error() string {
	return fmt.Sprintf("line of %d bytes exceeds the %d-byte limit", e.n, e.max)
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its terminator. A line that fits
// the reader's buffer is returned in place, valid until the following
// call; a longer one is kept as pieces and joined once at the end, because
// growing one slice by append leaves a trail of discarded copies (a 16 MiB
// line peaked at ~96 MB of memory that way). That joined line is owned:
// the caller may keep it.
func (r *lineReader) next() (line []byte, owned bool, err error) {
	var pieces [][]byte
	total := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		if total+len(bytes.TrimRight(chunk, "\r\n")) > r.max {
			n := total + len(chunk)
			for err == bufio.ErrBufferFull {
				chunk, err = r.br.ReadSlice('\n')
				n += len(chunk)
			}
			return nil, false, &lineTooLongError{n: n - trailingNewline(chunk), max: r.max}
		}
		switch {
		case err == bufio.ErrBufferFull:
			pieces = append(pieces, append([]byte(nil), chunk...))
			total += len(chunk)
			continue
		case err != nil && err != io.EOF:
			return nil, false, err
		case err == io.EOF && total+len(chunk) == 0:
			return nil, false, io.EOF
		}
		// err is nil (a newline ended the line) or EOF (the last line
		// may lack its newline).
		if len(pieces) == 0 {
			return bytes.TrimRight(chunk, "\r\n"), false, nil
		}
		line := make([]byte, 0, total+len(chunk))
		for _, p := range pieces {
			line = append(line, p...)
		}
		return bytes.TrimRight(append(line, chunk...), "\r\n"), true, nil
	}
}

func trailingNewline(chunk []byte) int {
	return len(chunk) - len(bytes.TrimRight(chunk, "\r\n"))
}
