package stream

import (
	"context"
	"fmt"
	"time"
)

// Item is what a reader receives: either the start of a publishing session
// (Session set: tracks may have changed, timestamps restart) or an access unit.
type Item struct {
	Session *Session
	AU      *AccessUnit
}

// ReaderInfo describes a reader for logs and the API.
type ReaderInfo struct {
	ID         int       `json:"id"`
	Kind       string    `json:"kind"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Since      time.Time `json:"since"`
}

// Reader receives a stream's items through a bounded queue.
type Reader struct {
	stream *Stream
	info   ReaderInfo
	queue  chan Item
	err    error // set before queue is closed
}

// NewReader attaches a reader. If a session is live, the reader first gets
// the session and then the cached GOP, so its first video frame is a keyframe.
func (s *Stream) NewReader(kind, remoteAddr string) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateEnded {
		return nil, fmt.Errorf("read %s: %w", s.name, ErrStreamEnded)
	}
	s.nextReader++
	r := &Reader{
		stream: s,
		info:   ReaderInfo{ID: s.nextReader, Kind: kind, RemoteAddr: remoteAddr, Since: time.Now()},
		queue:  make(chan Item, s.hub.cfg.ReaderQueue),
	}
	if s.session != nil {
		r.queue <- Item{Session: s.session}
		if s.gopValid {
			for _, au := range s.gop {
				r.queue <- Item{AU: au}
			}
		}
	}
	s.readers[r] = struct{}{}
	return r, nil
}

// Info describes the reader.
func (r *Reader) Info() ReaderInfo { return r.info }

// Read returns the next item. After the stream ends or the reader is dropped,
// it returns the queued items and then ErrStreamEnded or ErrSlowReader.
func (r *Reader) Read(ctx context.Context) (Item, error) {
	select {
	case it, ok := <-r.queue:
		if !ok {
			r.stream.mu.Lock()
			err := r.err
			r.stream.mu.Unlock()
			return Item{}, err
		}
		return it, nil
	case <-ctx.Done():
		return Item{}, ctx.Err()
	}
}

// Close detaches the reader.
func (r *Reader) Close() {
	r.stream.mu.Lock()
	defer r.stream.mu.Unlock()
	r.stream.dropLocked(r, ErrStreamEnded)
}

// Readers lists the attached readers.
func (s *Stream) Readers() []ReaderInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ReaderInfo, 0, len(s.readers))
	for r := range s.readers {
		out = append(out, r.info)
	}
	return out
}
