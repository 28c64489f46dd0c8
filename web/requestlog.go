package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// withRequestLog logs every request at debug level, after it is served.
func withRequestLog(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !log.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		hw := &hookWriter{ResponseWriter: w}
		h.ServeHTTP(hw, r)
		log.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelDebug, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", hw.Status()),
			slog.Int64("bytes", hw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}
