// Package logsink gathers the worker's log lines into few writes.
//
// The worker logs one line per call. Written one by one, each line is a
// write(2) to stderr on the call's path: ~8 µs of a ~370 µs ping on the
// machine the benchmarks ran on, more than any other step of the worker's
// own. Gathered, a burst of calls costs one write every few milliseconds.
package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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
// Logging never blocks a call. The write to the underlying writer is made
// outside the lock, by a goroutine of its own; a line that asks for a
// write waits for it at most writeWait, so with a healthy stderr a
// warning is on it when WriteLevel returns. While a write is pending
// (stderr is a pipe nobody reads, a terminal on hold), lines are kept up
// to maxBuffered and dropped past it, as zerolog's diode does; the count
// is reported in the log as soon as a write goes through, and by Dropped.
//
// What a kill -9 or a runtime crash can lose is at most delay's worth of
// info and debug lines. Each Write is whole lines (zerolog writes one event
// per call), so lines never interleave.
type Writer struct {
	delay       time.Duration
	maxBuffered int

	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	timer   *time.Timer   // armed while buf holds lines
	writing chan struct{} // non-nil while a write is under way; closed when it ends
	started time.Time     // when that write began
	urgent  bool          // buf must be written as soon as the pending write ends
	dropped int64         // lines lost since the last report
	total   atomic.Int64  // lines lost since New
	err     error         // the last write's, reported by Flush
}

// writeWait bounds how long a line that asks for a write waits for it,
// and flushWait how long Flush waits for what is pending.
const (
	writeWait = 50 * time.Millisecond
	flushWait = time.Second
)

// New returns a Writer in front of w. delay bounds how long an info line
// may wait; maxBuffered bounds the bytes that may (beyond it, the line
// that passes it is written with the rest at once).
func New(w io.Writer, delay time.Duration, maxBuffered int) *Writer {
	s := &Writer{w: w, delay: delay, maxBuffered: maxBuffered}
	s.timer = time.AfterFunc(time.Hour, func() {
		s.mu.Lock()
		s.startLocked()
		s.mu.Unlock()
	})
	s.timer.Stop()
	return s
}

// Dropped is how many lines were lost since New: dropped while a write
// was pending, or in a write that failed.
func (s *Writer) Dropped() int64 { return s.total.Load() }

// Write keeps p as an info line.
func (s *Writer) Write(p []byte) (int, error) {
	return s.WriteLevel(zerolog.InfoLevel, p)
}

// WriteLevel keeps p, or writes it with every waiting line when level is
// a warning or worse or the waiting lines pass maxBuffered.
func (s *Writer) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	urgent := level >= zerolog.WarnLevel && level != zerolog.NoLevel
	s.mu.Lock()
	// A write under way for less than writeWait is waited for (the
	// writer is only slow); one pending longer is taken as stuck, and
	// nothing waits for it any more.
	for s.writing != nil && (urgent || len(s.buf)+len(p) > s.maxBuffered) {
		left := writeWait - time.Since(s.started)
		if left <= 0 {
			break
		}
		done := s.writing
		s.mu.Unlock()
		select {
		case <-done:
		case <-time.After(left):
		}
		s.mu.Lock()
	}
	if s.writing != nil && len(s.buf)+len(p) > s.maxBuffered {
		s.dropLocked(1)
		s.mu.Unlock()
		return len(p), nil
	}
	waiting := len(s.buf) > 0
	s.buf = append(s.buf, p...)
	if urgent || len(s.buf) >= s.maxBuffered {
		if s.writing != nil {
			s.urgent = true // written when the pending write ends
			s.mu.Unlock()
			return len(p), nil
		}
		done := s.startLocked()
		s.mu.Unlock()
		select {
		case <-done:
		case <-time.After(writeWait):
			return len(p), nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return 0, s.err
		}
		return len(p), nil
	}
	if !waiting {
		s.timer.Reset(s.delay)
	}
	s.mu.Unlock()
	return len(p), nil
}

// Flush writes every waiting line now. It waits for that at most
// flushWait: a writer that takes nothing cannot hold the worker's exit.
func (s *Writer) Flush() error {
	deadline := time.After(flushWait)
	for {
		s.mu.Lock()
		if s.writing == nil {
			if len(s.buf) == 0 && (s.dropped == 0 || s.err != nil) {
				err := s.err
				s.mu.Unlock()
				return err
			}
			s.startLocked()
		}
		done := s.writing
		s.mu.Unlock()
		select {
		case <-done:
		case <-deadline:
			return errors.New("logsink: the log writer took nothing for " + flushWait.String())
		}
	}
}

func (s *Writer) dropLocked(lines int64) {
	s.dropped += lines
	s.total.Add(lines)
}

// startLocked hands the waiting lines (after a report of any dropped
// ones) to a goroutine that writes them, unless a write is under way. It
// answers a channel closed when that write ends.
func (s *Writer) startLocked() chan struct{} {
	s.timer.Stop()
	if s.writing != nil {
		s.urgent = true
		return s.writing
	}
	var data []byte
	if s.dropped > 0 {
		data = fmt.Appendf(nil, `{"level":"warn","dropped":%d,"message":"log lines dropped: the log writer was not taking them"}`+"\n", s.dropped)
		s.dropped = 0
	}
	data = append(data, s.buf...)
	if cap(s.buf) > 4*s.maxBuffered {
		s.buf = nil // one huge line's buffer is not kept for the life of the process
	} else {
		s.buf = s.buf[:0]
	}
	done := make(chan struct{})
	if len(data) == 0 {
		close(done)
		return done
	}
	s.writing, s.started = done, time.Now()
	go s.write(data, done)
	return done
}

func (s *Writer) write(data []byte, done chan struct{}) {
	_, err := s.w.Write(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	if err != nil {
		s.dropLocked(int64(bytes.Count(data, []byte("\n"))))
	}
	s.writing = nil
	close(done)
	if s.urgent || len(s.buf) >= s.maxBuffered {
		s.urgent = false
		s.startLocked()
	} else if len(s.buf) > 0 {
		s.timer.Reset(s.delay)
	}
}
