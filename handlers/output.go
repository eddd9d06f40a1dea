package handlers

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/podman-worker/podman-worker/rpc"
)

// OutputMethod is the notification that carries a streaming run's output
// while the function runs.
const OutputMethod = "run.output"

// maxOutputPiece bounds the data of one run.output notification.
const maxOutputPiece = 16 << 10

// outputParams is one run.output notification. Data is text; a piece
// that is not valid UTF-8 (a function may print any bytes) is sent as
// base64 with Encoding "base64", so the line stays valid JSON text and
// the bytes arrive exact. Truncated marks the last notification of a
// stream that passed --max-output-bytes: nothing more of it is sent.
type outputParams struct {
	RequestID any    `json:"request_id"`
	Stream    string `json:"stream"`
	Data      string `json:"data"`
	Encoding  string `json:"encoding,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// outputStream turns one stream's writes into run.output notifications,
// in the order written, cut between characters into pieces of at most
// maxOutputPiece bytes. It runs on the attach's goroutine (Capped's
// observer), so the notifications of both streams go out in the order
// the function wrote them, and a client that stops reading holds the
// attach, not the worker's memory.
type outputStream struct {
	send    func(outputParams)
	name    string
	max     int // bytes of the stream to send at most (--max-output-bytes)
	sent    int
	pending []byte // the start of a character whose rest has not come yet
	done    bool
}

func newOutputStream(send func(outputParams), name string, max int) *outputStream {
	return &outputStream{send: send, name: name, max: max}
}

// notifier sends run.output notifications for the call, when it has an
// id to name (a notification or another transport's call has none).
func notifier(call *rpc.Call) func(outputParams) {
	return func(p outputParams) {
		if call == nil || call.ID == nil {
			return
		}
		p.RequestID = call.ID
		_ = call.Notify(OutputMethod, p)
	}
}

func (o *outputStream) write(p []byte) {
	if o.done || len(p) == 0 {
		return
	}
	data := append(o.pending, p...)
	o.pending = nil
	if room := o.max - o.sent; len(data) > room {
		o.pieces(data[:room])
		o.send(outputParams{Stream: o.name, Truncated: true})
		o.done = true
		return
	}
	// Hold back an incomplete character at the end for the next write.
	if cut := incompleteTail(data); cut > 0 {
		o.pending = append([]byte(nil), data[len(data)-cut:]...)
		data = data[:len(data)-cut]
	}
	o.pieces(data)
}

// flush sends what is held back, once the stream has ended.
func (o *outputStream) flush() {
	if !o.done && len(o.pending) > 0 {
		o.pieces(o.pending)
	}
	o.pending = nil
	o.done = true
}

// pieces sends data in pieces cut between characters.
func (o *outputStream) pieces(data []byte) {
	for len(data) > 0 {
		n := min(len(data), maxOutputPiece)
		if n < len(data) {
			for i := 0; i < utf8.UTFMax-1 && n > 1 && !utf8.RuneStart(data[n]); i++ {
				n--
			}
		}
		piece := data[:n]
		data = data[n:]
		o.sent += len(piece)
		// Text stays text: only the bytes that are not UTF-8 go as
		// base64, each run of them in a notification of its own.
		for len(piece) > 0 {
			valid := validPrefix(piece)
			if valid > 0 {
				o.send(outputParams{Stream: o.name, Data: string(piece[:valid])})
				piece = piece[valid:]
				continue
			}
			bad := 1
			for bad < len(piece) && validPrefix(piece[bad:]) == 0 {
				bad++
			}
			o.send(outputParams{Stream: o.name, Data: base64.StdEncoding.EncodeToString(piece[:bad]), Encoding: "base64"})
			piece = piece[bad:]
		}
	}
}

// validPrefix is the length of the longest prefix of p that is UTF-8.
func validPrefix(p []byte) int {
	n := 0
	for n < len(p) {
		r, size := utf8.DecodeRune(p[n:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		n += size
	}
	return n
}

// incompleteTail is how many bytes at the end of data begin a character
// that is not complete yet (0 to 3).
func incompleteTail(data []byte) int {
	for i := 1; i < utf8.UTFMax && i <= len(data); i++ {
		b := data[len(data)-i]
		if !utf8.RuneStart(b) {
			continue
		}
		// A start byte: complete if the bytes from it form a full rune.
		if r, size := utf8.DecodeRune(data[len(data)-i:]); r == utf8.RuneError && size <= 1 && !utf8.FullRune(data[len(data)-i:]) {
			return i
		}
		return 0
	}
	return 0
}
