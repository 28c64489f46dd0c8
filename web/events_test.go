package web

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
)

// eventType is the type GET /api/v1/events lists.
type eventType = events.Event

func TestListEvents(t *testing.T) {
	bus := events.NewBus(0)
	f := newFixtureConfig(t, Config{Events: bus}, nil)

	var list EventList
	decode(t, f.do(t, request{path: "/api/v1/events"}), http.StatusOK, &list)
	if list.Events == nil || len(list.Events) != 0 {
		t.Fatalf("no events: %+v, want an empty list", list)
	}

	at := time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC)
	bus.Publish(events.Event{Type: events.RecordingStarted, Stream: "live/cam1", Time: at, Data: map[string]any{"id": "r1"}})
	bus.Publish(events.Event{Type: events.RecordingFileCompleted, Stream: "live/cam1", Time: at,
		Data: map[string]any{"id": "r1", "path": "live/cam1/a.mp4", "duration": 60.5, "size": 1234}})
	bus.Publish(events.Event{Type: events.RecordingStarted, Stream: "live/cam2", Time: at})
	bus.Publish(events.Event{Type: "stream.ended", Stream: "live/cam1", Time: at})

	decode(t, f.do(t, request{path: "/api/v1/events"}), http.StatusOK, &list)
	if len(list.Events) != 4 || list.Events[0].Seq != 1 || list.Events[3].Seq != 4 {
		t.Fatalf("events = %+v, want 4 in order", list.Events)
	}
	e := list.Events[1]
	if e.Type != events.RecordingFileCompleted || e.Stream != "live/cam1" || !e.Time.Equal(at) ||
		e.Data["path"] != "live/cam1/a.mp4" || e.Data["duration"] != 60.5 || e.Data["size"] != 1234.0 {
		t.Errorf("event = %+v", e)
	}

	for query, want := range map[string][]uint64{
		"since=2":                {3, 4},
		"since=4":                {},
		"type=recording.":        {1, 2, 3},
		"type=recording.started": {1, 3},
		"stream=live/cam1":       {1, 2, 4},
		"stream=live/cam1&type=recording.&since=1": {2},
	} {
		decode(t, f.do(t, request{path: "/api/v1/events?" + query}), http.StatusOK, &list)
		got := []uint64{}
		for _, e := range list.Events {
			got = append(got, e.Seq)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: seqs %v, want %v", query, got, want)
		}
	}

	wantError(t, f.do(t, request{path: "/api/v1/events?since=-1"}), http.StatusBadRequest, `since "-1": want the seq of an event`)
	wantError(t, f.do(t, request{path: "/api/v1/events?since=x"}), http.StatusBadRequest, "since")
	wantError(t, f.do(t, request{path: "/api/v1/events", remote: remoteAddr}), http.StatusForbidden, "loopback")
}

func TestListEventsWithoutBus(t *testing.T) {
	f := newFixture(t, "", nil)
	wantError(t, f.do(t, request{path: "/api/v1/events"}), http.StatusNotImplemented, "keeps no events")
}
