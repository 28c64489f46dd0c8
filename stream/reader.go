package stream

import (
	"cmp"
	"context"
	"fmt"
	"slices"
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
	// Guarded by stream.mu:
	err     error // set before queue is closed
	index   int   // position in stream.readers, -1 once detached
	waitKey bool  // skip video until a keyframe (joined mid-GOP)
}

// NewReader attaches a reader. If there is a session, the reader first gets
// the session and then the cached GOP: the last video keyframe and every
// access unit since, so its first video frame is a keyframe. When no GOP is
// cached (none yet, or longer than GOPCacheLimit) the reader skips video
// until the next keyframe. Audio-only readers start at the next access unit.
// The same keyframe rule applies at the start of every session.
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
		index:  len(s.readers),
	}
	if s.session != nil {
		// The queue holds at least GOPCacheLimit+16 items: this never blocks.
		r.queue <- Item{Session: s.session}
		if s.gopValid {
			for _, au := range s.gop {
				r.queue <- Item{AU: au}
			}
		} else {
			r.waitKey = s.hasVideo
		}
	}
	s.readers = append(s.readers, r)
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

// Close detaches the reader; a Read blocked on it returns what is queued and
// then ErrStreamEnded. It is safe to call more than once, and after the
// reader was dropped or the stream ended.
func (r *Reader) Close() {
	r.stream.mu.Lock()
	defer r.stream.mu.Unlock()
	r.stream.dropLocked(r, ErrStreamEnded)
}

// Readers lists the attached readers, ordered by ID.
func (s *Stream) Readers() []ReaderInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readerInfosLocked()
}

func (s *Stream) readerInfosLocked() []ReaderInfo {
	out := make([]ReaderInfo, 0, len(s.readers))
	for _, r := range s.readers {
		out = append(out, r.info)
	}
	slices.SortFunc(out, func(a, b ReaderInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
