package events

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestBusDeliversKeepsAndLogs(t *testing.T) {
	b := NewBus(3)
	var got []string
	cancel := b.Subscribe(func(e Event) { got = append(got, e.Type) })
	var logs bytes.Buffer
	b.LogTo(slog.New(slog.NewTextHandler(&logs, nil)))
	for _, typ := range []string{RecordingStarted, RecordingFileCompleted, RecordingFailed, RecordingFinished} {
		b.Publish(Event{Type: typ, Stream: "live/a", Data: map[string]any{"path": "x.mp4", "size": 10}})
	}
	cancel()
	b.Publish(Event{Type: RecordingDeleted})

	if strings.Join(got, ",") != "recording.started,recording.file_completed,recording.failed,recording.finished" {
		t.Fatalf("subscriber got %v", got)
	}
	recent := b.Recent(0, nil)
	if len(recent) != 3 || recent[0].Seq != 3 || recent[2].Type != RecordingDeleted {
		t.Fatalf("history keeps the 3 newest in order, got %+v", recent)
	}
	if since := b.Recent(4, func(e Event) bool { return e.Type == RecordingDeleted }); len(since) != 1 || since[0].Seq != 5 {
		t.Fatalf("Recent(4, deleted) = %+v", since)
	}
	line := "level=WARN msg=event type=recording.failed stream=live/a path=x.mp4 size=10"
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("log lacks %q:\n%s", line, logs.String())
	}
}
