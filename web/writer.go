package web

import (
	"net/http"
)

// hookWriter wraps a ResponseWriter: it records the status and the body
// size, and runs beforeHeader once, just before the header is sent.
// Flush and http.ResponseController keep working through it.
type hookWriter struct {
	http.ResponseWriter
	beforeHeader func(http.Header)
	status       int
	bytes        int64
}

func (w *hookWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.beforeHeader != nil {
			w.beforeHeader(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hookWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client, as LL-HLS blocking requests need.
func (w *hookWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *hookWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status sent, 200 when the handler wrote without one, and 0
// when nothing was sent.
func (w *hookWriter) Status() int { return w.status }
