package srt

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"
)

// connection is one accepted SRT connection.
type connection struct {
	s      *Server
	conn   gosrt.Conn
	id     uint64
	remote string
	log    *slog.Logger
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	return n, err
}

// retryWriter writes one SRT packet per Write. gosrt refuses a packet with
// io.EOF when its send queue is full, as when a new reader gets the cached
// GOP at once: the write is retried for a while then.
type retryWriter struct {
	conn    gosrt.Conn
	closed  <-chan struct{}
	timeout time.Duration
	n       func(int)
}

func (w *retryWriter) Write(p []byte) (int, error) {
	deadline := time.Now().Add(w.timeout)
	for {
		n, err := w.conn.Write(p)
		if err == nil {
			w.n(n)
			return n, nil
		}
		if !errors.Is(err, io.EOF) || time.Now().After(deadline) {
			return 0, err
		}
		select {
		case <-w.closed:
			return 0, err
		case <-time.After(5 * time.Millisecond):
		}
	}
}
