// Package logsink gathers the worker's log lines into few writes.
//
// The worker logs one line per call. Written one by one, each line is a
// write(2) to stderr on the call's path: ~8 µs of a ~370 µs ping on the
// machine the benchmarks ran on, more than any other step of the worker's
// own. Gathered, a burst of calls costs one write every few milliseconds.
package logsink

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Writer is a zerolog.LevelWriter that keeps lines in order and writes
// them to the underlying writer together:
//   - at once, with every line before it, when a line is a warning or
//     worse, so what an operator must see is never held back and a crash
//     that follows a warning still leaves it on stderr;
//   - once maxBuffered bytes wait;
//   - otherwise within delay of the first waiting line;
//   - and on Flush, which the worker calls before it exits.
//
// What a kill -9 or a runtime crash can lose is at most delay's worth of
// info and debug lines. Each Write is whole lines (zerolog writes one event
// per call), so lines never interleave.
type Writer struct {
	delay       time.Duration
	maxBuffered int

	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer // armed while buf holds lines
	err   error       // the last write's, reported by Flush
}

// New returns a Writer in front of w. delay bounds how long an info line
// may wait; maxBuffered bounds the bytes that may (beyond it, the line
// that passes it is written with the rest at once).
func New(w io.Writer, delay time.Duration, maxBuffered int) *Writer {
	s := &Writer{w: w, delay: delay, maxBuffered: maxBuffered}
	s.timer = time.AfterFunc(time.Hour, func() { _ = s.Flush() })
	s.timer.Stop()
	return s
}

// Write keeps p as an info line.
func (s *Writer) Write(p []byte) (int, error) {
	return s.WriteLevel(zerolog.InfoLevel, p)
}

// WriteLevel keeps p, or writes it with every waiting line when level is
// a warning or worse or the waiting lines pass maxBuffered.
func (s *Writer) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	waiting := len(s.buf) > 0
	s.buf = append(s.buf, p...)
	if (level >= zerolog.WarnLevel && level != zerolog.NoLevel) || len(s.buf) >= s.maxBuffered {
		if err := s.flushLocked(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if !waiting {
		s.timer.Reset(s.delay)
	}
	return len(p), nil
}

// Flush writes every waiting line now.
func (s *Writer) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Writer) flushLocked() error {
	s.timer.Stop()
	if len(s.buf) == 0 {
		return s.err
	}
	_, s.err = s.w.Write(s.buf)
	if cap(s.buf) > 4*s.maxBuffered {
		s.buf = nil // one huge line's buffer is not kept for the life of the process
	} else {
		s.buf = s.buf[:0]
	}
	return s.err
}
