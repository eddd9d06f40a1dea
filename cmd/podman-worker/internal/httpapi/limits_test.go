package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Clients that send most of a large body and stall hold the worker's
// memory: the bodies in flight share one budget. Sent: 5 requests that
// each announce 4 MiB (Content-Length) and send 3 MiB, under a budget of
// 8 MiB; came back: the third and later answered 429 Busy at once, their
// bodies never read, and once the stalled ones go, a request is served.
func TestBodiesInFlightShareOneBound(t *testing.T) {
	url, _, _ := serve(t, (&standIn{}).call, Options{MaxBodyBytes: 4 << 20, MaxBodyBytesInFlight: 8 << 20, ReadTimeout: 10 * time.Second})
	addr := strings.TrimPrefix(url, "http://")
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	busy := 0
	for i := range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /api/v1/containers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 4<<20)
		go c.Write(make([]byte, 3<<20)) // most of the body, then nothing
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"type":"Busy"`) {
				t.Errorf("request %d: %d %s; want 429 Busy", i, resp.StatusCode, body)
			}
			busy++
		}
		stalled = append(stalled, c)
	}
	if busy != 3 {
		t.Errorf("%d of 5 stalled 4 MiB bodies were answered Busy; want 3 (the budget holds two)", busy)
	}
	for _, c := range stalled {
		c.Close()
	}
	stalled = nil
	// Once the server has seen them close, their share of the budget is
	// back: a request is answered Busy until then, and served after.
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err = http.Post(url+"/api/v1/containers", "application/json", strings.NewReader(`{"image":"i","name":"n"}`))
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Errorf("a request after the stalled ones went: %v %v", resp, err)
	}
}

// Past MaxConns open connections, a new one is answered 503 and closed;
// once connections close, new ones are served. Sent: 4 idle connections
// under a bound of 4, then a fifth.
func TestOpenConnectionsAreBounded(t *testing.T) {
	url, _, _ := serve(t, (&standIn{}).call, Options{MaxConns: 4})
	addr := strings.TrimPrefix(url, "http://")
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// A fifth is answered 503 once the server has accepted the four: one
	// it reads nothing on within 200 ms was taken before them, and takes
	// a place of its own until it is closed, so another is tried.
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		c, derr := net.Dial("tcp", addr)
		if derr != nil {
			t.Fatal(derr)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		resp, err = http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err == nil {
			break
		}
	}
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the fifth connection: %v %v; want 503", resp, err)
	}
	for _, c := range idle {
		c.Close()
	}
	// Served again once the server has seen them close.
	var r *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err = http.Get(url + "/api/v1/health")
		if err == nil {
			r.Body.Close()
		}
		if err == nil && r.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || r.StatusCode != http.StatusOK {
		t.Errorf("health after the idle connections closed: %v %v", r, err)
	}
}
