package rtsp

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// headListener bounds how long a new connection may take to send its
// first request. gortsplib reads the first bytes of a connection (to tell
// RTSP from an HTTP tunnel) without a deadline, so a silent client would
// otherwise hold its connection until the server stops. Once the request
// head has arrived, gortsplib's own deadlines take over.
type headListener struct {
	net.Listener
	timeout time.Duration
}

func (l *headListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	return &headConn{Conn: c}, nil
}

// headConn clears the first-request deadline once an HTTP tunnel's request
// head is complete. For RTSP requests gortsplib sets a deadline before
// every read, which replaces this one.
type headConn struct {
	net.Conn
	mu   sync.Mutex
	done bool
	head []byte // the bytes read so far, up to maxHead
}

// maxHead bounds the bytes headConn inspects.
const maxHead = 8192

func (c *headConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.inspect(b[:n])
	}
	return n, err
}

func (c *headConn) inspect(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.head = append(c.head, b[:min(len(b), maxHead-len(c.head))]...)
	if len(c.head) < 4 {
		return
	}
	if !bytes.HasPrefix(c.head, []byte("GET ")) && !bytes.HasPrefix(c.head, []byte("POST")) {
		c.done, c.head = true, nil // RTSP: gortsplib manages the deadlines
		return
	}
	if bytes.Contains(c.head, []byte("\r\n\r\n")) {
		// An HTTP tunnel's request head is complete; the tunnel manages
		// its deadlines from here on.
		c.done, c.head = true, nil
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
}
