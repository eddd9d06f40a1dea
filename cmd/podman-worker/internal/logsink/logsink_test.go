package logsink

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
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
	full atomic.Bool
}

func (f *failing) Write(p []byte) (int, error) {
	if f.full.Load() {
		return 0, errors.New("no space left on device")
	}
	return f.recorder.Write(p)
}

// A log that cannot be written loses the lines of the failed write and
// reports it, holds nothing more for them (memory does not grow with a
// full disk), and writes the lines that come after once it can again.
func TestAFailedWriteDropsItsLinesAndTheNextOnesGetThrough(t *testing.T) {
	f := &failing{}
	f.full.Store(true)
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
	f.full.Store(false)
	s.WriteLevel(zerolog.WarnLevel, []byte("back\n"))
	if got := f.got(); len(got) != 1 || !strings.HasSuffix(got[0], "back\n") {
		t.Errorf("after the writer recovered: %q; want one write ending with the new line", got)
	}
	if err := s.Flush(); err != nil {
		t.Errorf("Flush once writes succeed again: %v", err)
	}
}

// stderr as a real pipe that nobody reads: once its buffer (64 KiB on
// Linux) is full, a write to it never returns. Lines keep being taken,
// each at once or within writeWait, the sink holds no more than
// maxBuffered, the lines it cannot keep are counted, and Flush gives up
// instead of holding the worker's exit.
func TestAnUnreadPipeNeverBlocksTheCallers(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // unblocks the pending write when the test ends
	defer w.Close()
	s := New(w, time.Millisecond, 64<<10)
	line := []byte(strings.Repeat("x", 99) + "\n")
	var slowest time.Duration
	start := time.Now()
	for i := 0; i < 20000; i++ { // 2 MB: 30 times what the pipe holds
		level := zerolog.InfoLevel
		if i%100 == 0 {
			level = zerolog.WarnLevel
		}
		t0 := time.Now()
		if n, _ := s.WriteLevel(level, line); n != len(line) {
			t.Fatalf("line %d: WriteLevel took %d bytes of %d", i, n, len(line))
		}
		slowest = max(slowest, time.Since(t0))
	}
	if slowest > 10*writeWait || time.Since(start) > 10*time.Second {
		t.Errorf("the slowest line took %v, all %v; want each within writeWait (%v) and no growth with the line count", slowest, time.Since(start), writeWait)
	}
	if s.Dropped() == 0 {
		t.Error("2 MB of lines went to a 64 KiB pipe nobody reads, and none was counted as dropped")
	}
	s.mu.Lock()
	held := len(s.buf)
	s.mu.Unlock()
	if held > 64<<10 {
		t.Errorf("%d bytes held; want at most maxBuffered", held)
	}
	t0 := time.Now()
	if err := s.Flush(); err == nil || time.Since(t0) > 2*flushWait {
		t.Errorf("Flush on a stuck pipe: %v after %v; want an error within %v", err, time.Since(t0), flushWait)
	}
	t.Logf("%d lines dropped, slowest line %v", s.Dropped(), slowest)
	// Once the pipe is read again, the lines get through with a report
	// of how many were dropped.
	read := make(chan string)
	go func() {
		var all []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if strings.Contains(string(all), "back\n") || err != nil {
				read <- string(all)
				return
			}
		}
	}()
	s.WriteLevel(zerolog.WarnLevel, []byte("back\n"))
	select {
	case got := <-read:
		if !strings.Contains(got, `"dropped":`) {
			t.Errorf("after the pipe was read again no report of dropped lines came with the next line")
		}
	case <-time.After(10 * time.Second):
		t.Error("a line written after the pipe was read again never came through")
	}
}
