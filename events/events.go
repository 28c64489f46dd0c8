// Package events is MPS's internal event bus: components publish what
// happened (a recording started, a file was completed or deleted), and
// subscribers log it, keep it for the API, or deliver it as webhooks.
package events

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Event types.
const (
	RecordingStarted       = "recording.started"
	RecordingFileCompleted = "recording.file_completed"
	RecordingFinished      = "recording.finished"
	RecordingFailed        = "recording.failed"
	RecordingResumed       = "recording.resumed"
	RecordingDeleted       = "recording.deleted"
	StreamStarted          = "stream.started"
	StreamEnded            = "stream.ended"
	QCAlert                = "qc.alert"
)

// Event is one thing that happened.
type Event struct {
	// Seq numbers events in the order the bus received them, from 1.
	Seq    uint64         `json:"seq"`
	Type   string         `json:"type"`
	Time   time.Time      `json:"time"`
	Stream string         `json:"stream,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
}

// Sink receives events. Publish must not block.
type Sink interface {
	Publish(e Event)
}

// DefaultHistory is how many events a Bus keeps for Recent when
// NewBus is given no size.
const DefaultHistory = 1000

// Bus delivers each event to every subscriber, in order, and keeps the
// newest ones for Recent. It is safe for concurrent use. Subscribers run
// on the publisher's goroutine and must not block.
type Bus struct {
	mu      sync.Mutex
	seq     uint64
	history []Event // ring of the newest events
	next    int
	subs    map[int]func(Event)
	nextSub int
}

// NewBus returns a bus that keeps the newest history events (DefaultHistory
// when history <= 0).
func NewBus(history int) *Bus {
	if history <= 0 {
		history = DefaultHistory
	}
	return &Bus{history: make([]Event, 0, history), subs: make(map[int]func(Event))}
}

// Publish stamps e with its sequence number (and the time, when unset) and
// delivers it.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	b.seq++
	e.Seq = b.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(b.history) < cap(b.history) {
		b.history = append(b.history, e)
	} else {
		b.history[b.next] = e
		b.next = (b.next + 1) % len(b.history)
	}
	subs := make([]func(Event), 0, len(b.subs))
	for _, id := range slices.Sorted(maps.Keys(b.subs)) {
		subs = append(subs, b.subs[id])
	}
	b.mu.Unlock()
	for _, fn := range subs {
		fn(e)
	}
}

// Subscribe calls fn for every event published from now on, until cancel
// is called.
func (b *Bus) Subscribe(fn func(Event)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.nextSub
	b.nextSub++
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
	}
}

// Recent returns the kept events with a sequence number above since,
// oldest first, that match keep (nil keeps all).
func (b *Bus) Recent(since uint64, keep func(Event) bool) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Event, 0)
	n := len(b.history)
	for i := range n {
		e := b.history[(b.next+i)%n]
		if e.Seq > since && (keep == nil || keep(e)) {
			out = append(out, e)
		}
	}
	return out
}

// LogTo logs every event at info level (warn for failures) on log.
func (b *Bus) LogTo(log *slog.Logger) (cancel func()) {
	return b.Subscribe(func(e Event) {
		level := slog.LevelInfo
		switch {
		case e.Type == RecordingFailed:
			level = slog.LevelWarn
		case strings.HasSuffix(e.Type, ".progress"):
			level = slog.LevelDebug // several a second per job
		}
		attrs := []any{"type", e.Type}
		if e.Stream != "" {
			attrs = append(attrs, "stream", e.Stream)
		}
		for _, k := range slices.Sorted(maps.Keys(e.Data)) {
			attrs = append(attrs, k, e.Data[k])
		}
		log.Log(context.Background(), level, "event", attrs...)
	})
}
