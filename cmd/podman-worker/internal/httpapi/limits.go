package httpapi

import (
	"fmt"
	"net"
	"sync"

	"github.com/rs/zerolog"
)

// budget is a bound on bytes held at once, shared by every request.
type budget struct {
	mu   sync.Mutex
	max  int64
	used int64
}

func (b *budget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// limitListener bounds the open connections: past max, a new connection
// is answered 503 at once and closed, so idle connections cannot hold the
// worker's descriptors (3,000 held 3,007) and a client learns why.
type limitListener struct {
	net.Listener
	max int
	log zerolog.Logger

	mu   sync.Mutex
	open int
}

// busyAnswer is the whole answer to a connection past the bound, in the
// API's error envelope.
var busyAnswer = func() []byte {
	body := `{"error":{"code":503,"message":"too many open connections to the worker; close idle ones or try again shortly","type":"Unavailable"},"success":false}`
	return []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body))
}()

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open >= l.max {
			l.mu.Unlock()
			go func() {
				_, _ = c.Write(busyAnswer)
				c.Close()
			}()
			continue
		}
		l.open++
		l.mu.Unlock()
		return &countedConn{Conn: c, l: l}, nil
	}
}

// countedConn gives its place back when closed.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// formatBytes writes n in MiB when it is a whole number of them.
func formatBytes(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
