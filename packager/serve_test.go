package packager

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// TestPartPastCompleteSegmentIsNotHeld asks for a part after the last part
// of a segment that is complete: a player holding an old preload hint while
// the publisher reconnects does that. No such part will ever exist, so the
// answer is 404 at once, not a request held until BlockTimeout.
func TestPartPastCompleteSegmentIsNotHeld(t *testing.T) {
	media := testmedia.MakeMedia(t, 3)
	const block = 5 * time.Second
	ts := newTestServer(t, 10*time.Second, Config{BlockTimeout: block})
	tracks := tracksOf(media)
	p, err := ts.hub.Publish("live/past", tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	media.Publish(t, p, tracks, false, 0)
	p.Close(nil)
	// The publisher is back, but has sent nothing yet: the segment that was
	// in progress is now complete and the next one has not started.
	tracks2 := tracksOf(media)
	p2, err := ts.hub.Publish("live/past", tracks2, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(nil)

	m := ts.pkg.muxer("live/past")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !m.waitFor(ctx, func() bool { return m.period != nil && m.period.id == 2 }) {
		t.Fatal("second session did not reach the packager")
	}
	m.mu.RLock()
	last := m.segments[len(m.segments)-1]
	msn, complete, nextMSN := last.msn, last.complete, m.nextMSN
	parts := []int{len(last.tracks[0].parts), len(last.tracks[1].parts)}
	m.mu.RUnlock()
	if !complete || msn != nextMSN-1 {
		t.Fatalf("segment %d complete=%v, next MSN %d: the test needs the newest segment complete", msn, complete, nextMSN)
	}
	for track, n := range parts {
		if n == 0 {
			t.Fatalf("track %d has no parts in segment %d", track, msn)
		}
		if code, _, _ := ts.get(t, fmt.Sprintf("/live/past/%s_%d_%d_%d.m4s", m.prefix, track, msn, n-1)); code != 200 {
			t.Errorf("track %d: last part %d of segment %d: %d, want 200", track, n-1, msn, code)
		}
		for _, idx := range []int{n, n + 3} {
			start := time.Now()
			code, _, _ := ts.get(t, fmt.Sprintf("/live/past/%s_%d_%d_%d.m4s", m.prefix, track, msn, idx))
			if took := time.Since(start); code != 404 || took > block/5 {
				t.Errorf("track %d: part %d of complete segment %d (%d parts): %d after %v, want 404 at once", track, idx, msn, n, code, took.Round(time.Millisecond))
			}
		}
	}
}
