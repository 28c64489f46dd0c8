package srt

import (
	"context"
	"errors"
	"fmt"

	"github.com/mps-dev/mps/ingest/tsdemux"
	"github.com/mps-dev/mps/stream"
)

var errNewSession = errors.New("the stream started a new session; reconnect")

// read serves a hub stream to an SRT reader as MPEG-TS. A new publishing
// session (new tracks) ends the connection; the reader reconnects.
func (c *connection) read(d decision) {
	st, err := c.s.Hub.Get(d.sid.Name)
	if err != nil {
		c.log.Warn("srt read failed", "error", err)
		return
	}
	r, err := st.NewReader(Protocol, c.remote)
	if err != nil {
		c.log.Warn("srt read failed", "error", err)
		return
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(c.s.ctx)
	defer cancel()
	// A reader sends nothing but control packets: Read returns when the
	// connection closes (peer gone, idle timeout, server shutdown).
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := c.conn.Read(buf); err != nil {
				cancel()
				return
			}
		}
	}()
	c.log.Info("srt reader attached", "reader", r.Info().ID)
	err = c.serveReader(ctx, st, r)
	c.log.Info("srt reader detached", "reader", r.Info().ID, "reason", err)
}

func (c *connection) serveReader(ctx context.Context, st *stream.Stream, r *stream.Reader) error {
	w := &retryWriter{conn: c.conn, closed: ctx.Done(), timeout: c.s.ReadTimeout, n: st.AddBytesOut}
	var mux *tsdemux.Muxer
	for {
		it, err := r.Read(ctx)
		if err != nil {
			return err
		}
		if it.Session != nil {
			if mux != nil {
				return errNewSession
			}
			mux = &tsdemux.Muxer{W: w, Tracks: it.Session.Tracks, ChunkSize: chunkSize}
			if err := mux.Initialize(); err != nil {
				return fmt.Errorf("session %d: %w", it.Session.ID, err)
			}
			continue
		}
		if mux == nil || it.AU == nil {
			continue
		}
		if err := mux.WriteUnit(it.AU); err != nil {
			if errors.Is(err, tsdemux.ErrBadUnit) {
				c.log.Debug("srt reader: unit skipped", "error", err)
				continue
			}
			return err
		}
	}
}
