package runner

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame types. Worker to runner: Start, Input, InputEnd. Runner to
// worker: Ready, Stdout, Stderr, Exit, Fault.
const (
	Start    byte = 'S'
	Input    byte = 'I'
	InputEnd byte = 'C'
	Ready    byte = 'R'
	Stdout   byte = 'O'
	Stderr   byte = 'E'
	Exit     byte = 'X'
	Fault    byte = 'F'
)

// MaxPayload bounds one frame's payload; longer data goes in several.
const MaxPayload = 1 << 20

// headerSize is the type byte and the length.
const headerSize = 5

// ExitStatus is an Exit frame's payload.
type ExitStatus struct {
	// Code is the exit status as Podman reports a container's: the
	// process's own, or 128 plus the signal that killed it; 127 when the
	// command was not found, 126 when it could not be executed.
	Code int `json:"code"`
	// Signal is the signal that killed the process, 0 when it exited.
	Signal int `json:"signal,omitempty"`
	// Error says why the command could not start (Code 126 or 127).
	Error string `json:"error,omitempty"`
}

// Writer writes frames; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends one frame of type t, splitting payloads past MaxPayload.
func (fw *Writer) Write(t byte, payload []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), MaxPayload)
		var h [headerSize]byte
		h[0] = t
		binary.BigEndian.PutUint32(h[1:], uint32(n))
		// One write per frame: the attach stream carries each as it is.
		buf := make([]byte, 0, headerSize+n)
		buf = append(append(buf, h[:]...), payload[:n]...)
		if _, err := fw.w.Write(buf); err != nil {
			return err
		}
		payload = payload[n:]
	}
	return nil
}

// WriteExit sends an Exit frame.
func (fw *Writer) WriteExit(st ExitStatus) error {
	b, _ := json.Marshal(st)
	return fw.Write(Exit, b)
}

// ErrFrame is a stream that does not hold frames.
var ErrFrame = errors.New("runner: malformed frame")

// ReadFrame reads one frame from r.
func ReadFrame(r io.Reader) (t byte, payload []byte, err error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("%w: a payload of %d bytes", ErrFrame, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[0], payload, nil
}

// Decoder is an io.Writer that cuts what is written to it into frames, as
// the attach stream delivers them in pieces of any size, and hands each
// to its func. A stream that is not frames makes Write fail.
type Decoder struct {
	buf   []byte
	frame func(t byte, payload []byte)
	err   error
}

// NewDecoder returns a Decoder that calls frame for each frame, in order,
// from the goroutine that writes.
func NewDecoder(frame func(t byte, payload []byte)) *Decoder {
	return &Decoder{frame: frame}
}

func (d *Decoder) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.buf = append(d.buf, p...)
	for len(d.buf) >= headerSize {
		n := binary.BigEndian.Uint32(d.buf[1:headerSize])
		if n > MaxPayload {
			d.err = fmt.Errorf("%w: a payload of %d bytes", ErrFrame, n)
			return 0, d.err
		}
		if len(d.buf) < headerSize+int(n) {
			break
		}
		payload := make([]byte, n)
		copy(payload, d.buf[headerSize:headerSize+int(n)])
		t := d.buf[0]
		d.buf = d.buf[headerSize+int(n):]
		d.frame(t, payload)
	}
	if len(d.buf) == 0 {
		d.buf = nil // release the backing array between frames
	}
	return len(p), nil
}
