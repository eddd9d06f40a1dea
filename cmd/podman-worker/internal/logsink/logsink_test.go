package logsink

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// recorder keeps each Write the sink makes.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestWhenLinesAreWritten(t *testing.T) {
	type line struct {
		level zerolog.Level
		text  string
	}
	for _, tc := range []struct {
		name  string
		lines []line
		max   int
		want  []string // the writes made before any delay or Flush
	}{
		{"info lines wait", []line{{zerolog.InfoLevel, "a\n"}, {zerolog.DebugLevel, "b\n"}}, 1 << 10, nil},
		{"a warning takes every line before it, in order", []line{{zerolog.InfoLevel, "a\n"}, {zerolog.WarnLevel, "w\n"}, {zerolog.InfoLevel, "c\n"}}, 1 << 10, []string{"a\nw\n"}},
		{"an error is written at once", []line{{zerolog.ErrorLevel, "e\n"}}, 1 << 10, []string{"e\n"}},
		{"a line without a level waits like info", []line{{zerolog.NoLevel, "n\n"}}, 1 << 10, nil},
		{"lines past maxBuffered are written together", []line{{zerolog.InfoLevel, "aaaa\n"}, {zerolog.InfoLevel, "bbbb\n"}, {zerolog.InfoLevel, "c\n"}}, 8, []string{"aaaa\nbbbb\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			s := New(r, time.Hour, tc.max)
			for _, l := range tc.lines {
				if n, err := s.WriteLevel(l.level, []byte(l.text)); n != len(l.text) || err != nil {
					t.Fatalf("WriteLevel(%q) = %d, %v", l.text, n, err)
				}
			}
			if got := r.got(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("written before any delay: %q, want %q", got, tc.want)
			}
			// Flush leaves nothing behind, and every line is written once, in order.
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			var all, sent []string
			for _, l := range tc.lines {
				all = append(all, l.text)
			}
			sent = r.got()
			if strings.Join(sent, "") != strings.Join(all, "") {
				t.Errorf("after Flush the writes are %q, want every line once in order: %q", sent, all)
			}
		})
	}
}

// An info line reaches the writer within the delay, without a Flush, in
// one write with the lines that came with it.
func TestInfoLinesAreWrittenWithinTheDelay(t *testing.T) {
	r := &recorder{}
	s := New(r, 20*time.Millisecond, 1<<10)
	start := time.Now()
	s.Write([]byte("a\n"))
	s.Write([]byte("b\n"))
	for len(r.got()) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the waiting lines were not written within 5 s of a 20 ms delay")
		}
		time.Sleep(time.Millisecond)
	}
	if got := r.got(); len(got) != 1 || got[0] != "a\nb\n" {
		t.Errorf("writes %q, want one write of both lines", got)
	}
	// The next line arms the timer again.
	s.Write([]byte("c\n"))
	for len(r.got()) < 2 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("a line after the first write was never written")
		}
		time.Sleep(time.Millisecond)
	}
}

// Concurrent writers never interleave within a line (go test -race checks
// the locking too).
func TestConcurrentLinesStayWhole(t *testing.T) {
	r := &recorder{}
	s := New(r, time.Millisecond, 256)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s.Write([]byte(strings.Repeat("x", 30) + "\n"))
			}
		}()
	}
	wg.Wait()
	s.Flush()
	lines := strings.Split(strings.TrimSuffix(strings.Join(r.got(), ""), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		if l != strings.Repeat("x", 30) {
			t.Fatalf("a line was cut or mixed: %q", l)
		}
	}
}

// failing refuses every write while full is set, like stderr on a full
// disk or a pipe nobody reads any more.
type failing struct {
	recorder
	full bool
}

func (f *failing) Write(p []byte) (int, error) {
	if f.full {
		return 0, errors.New("no space left on device")
	}
	return f.recorder.Write(p)
}

// A log that cannot be written loses the lines of the failed write and
// reports it, holds nothing more for them (memory does not grow with a
// full disk), and writes the lines that come after once it can again.
func TestAFailedWriteDropsItsLinesAndTheNextOnesGetThrough(t *testing.T) {
	f := &failing{full: true}
	s := New(f, time.Hour, 1<<10)
	s.Write([]byte("lost\n"))
	if _, err := s.WriteLevel(zerolog.ErrorLevel, []byte("lost too\n")); err == nil {
		t.Fatal("a warning that could not be written reported no error")
	}
	if err := s.Flush(); err == nil {
		t.Error("Flush after a failed write reported no error")
	}
	for i := 0; i < 1000; i++ {
		s.Write([]byte(strings.Repeat("x", 100) + "\n")) // past maxBuffered: written (and failing) in batches
	}
	s.mu.Lock()
	held := len(s.buf)
	s.mu.Unlock()
	if held >= 1<<10 {
		t.Errorf("%d bytes held while the disk is full; want less than maxBuffered (1024)", held)
	}
	f.full = false
	s.WriteLevel(zerolog.WarnLevel, []byte("back\n"))
	if got := f.got(); len(got) != 1 || !strings.HasSuffix(got[0], "back\n") {
		t.Errorf("after the writer recovered: %q; want one write ending with the new line", got)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("Flush once writes succeed again: %v", err)
	}
}
