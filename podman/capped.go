package podman

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// Capped keeps the first max bytes written to it and notes whether more
// came. It never fails a write, so a stream is drained to its end and the
// process writing it never blocks on a full pipe: a chatty function costs
// the worker at most max bytes per stream. Safe for concurrent writers.
type Capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
	cut bool
	// observe, when set, sees every write as it comes, before the cap
	// (a run streams its output from here).
	observe func([]byte)
	// lastLen is the length of the latest write when it was short and
	// kept whole (it is then the tail of buf), else 0: the attach writes
	// one frame per write, and Podman's own error, when its link to the
	// container's output fails, is the stream's last frame (see
	// podmanFault).
	lastLen int
}

// maxLast bounds the write kept as last: Podman's error frames are one
// short line.
const maxLast = 512

// Observe has fn see every later write, in order, before the cap; nil
// stops it. fn runs on the writer's goroutine, under the writer's lock.
func (c *Capped) Observe(fn func([]byte)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observe = fn
}

// NewCapped returns a writer that keeps at most max bytes.
func NewCapped(max int) *Capped { return &Capped{max: max} }

func (c *Capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.observe != nil {
		c.observe(p)
	}
	c.lastLen = 0
	if len(p) <= maxLast && len(p) <= c.max-c.buf.Len() {
		c.lastLen = len(p)
	}
	if room := c.max - c.buf.Len(); len(p) > room {
		c.cut = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

// takeLast removes the latest write from what was kept when match says
// so, and returns it.
func (c *Capped) takeLast(match func([]byte) bool) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastLen == 0 {
		return "", false
	}
	at := c.buf.Len() - c.lastLen
	last := c.buf.Bytes()[at:]
	if !match(last) {
		return "", false
	}
	line := string(last)
	c.buf.Truncate(at)
	c.lastLen = 0
	return line, true
}

// WriteString writes s; the logs stream hands over strings.
func (c *Capped) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// Cut says whether anything was dropped.
func (c *Capped) Cut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// Bytes is what was kept, byte for byte.
func (c *Capped) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Bytes()
}

// String is the kept text without a character the cap split in two, so a
// result that carries it stays valid UTF-8.
func (c *Capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.buf.Bytes()
	if c.cut {
		for i := 1; i <= utf8.UTFMax-1 && i <= len(out); i++ {
			if utf8.RuneStart(out[len(out)-i]) {
				if !utf8.FullRune(out[len(out)-i:]) {
					out = out[:len(out)-i]
				}
				break
			}
		}
	}
	return string(out)
}
