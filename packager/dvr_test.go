package packager

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// publishDVR publishes 20 s of media with 1 s GOPs into a packager cutting
// 1 s segments, and waits until 19 segments are complete. The publisher
// stays open, so that the stream is live.
func publishDVR(t *testing.T, cfg Config) (*testServer, *muxer) {
	t.Helper()
	media := testmedia.MakeMedia(t, 20)
	cfg.SegmentDuration = time.Second
	ts := newTestServer(t, -1, cfg)
	tracks := tracksOf(media)
	p, err := ts.hub.Publish("live/dvr", tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(nil) })
	media.Publish(t, p, tracks, false, 0)
	m := ts.pkg.muxer("live/dvr")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !m.waitFor(ctx, func() bool { return m.nextMSN >= 20 }) {
		t.Fatal("the stream was not packaged")
	}
	return ts, m
}

// listed returns the segment numbers and the total EXTINF of a media playlist.
func listed(t *testing.T, pl string) (msns []uint64, total float64) {
	t.Helper()
	for _, m := range extinfRe.FindAllStringSubmatch(pl, -1) {
		d, _ := strconv.ParseFloat(m[1], 64)
		total += d
		f := strings.Split(strings.TrimSuffix(m[2], ".m4s"), "_")
		msn, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("segment URI %q", m[2])
		}
		msns = append(msns, msn)
	}
	return msns, total
}

func TestDVRWindowListsTheWindow(t *testing.T) {
	ts, m := publishDVR(t, Config{DVRWindow: 10 * time.Second})
	code, body, _ := ts.get(t, "/live/dvr/t0.m3u8")
	if code != 200 {
		t.Fatalf("playlist: %d %s", code, body)
	}
	msns, total := listed(t, body)
	if len(msns) < 10 || len(msns) > 11 || total < 10 || total > 11.5 {
		t.Fatalf("playlist lists %d segments, %.3f s; want the 10 s window:\n%s", len(msns), total, body)
	}
	if strings.Contains(body, "#EXT-X-ENDLIST") {
		t.Fatal("a live playlist ended")
	}
	// Audio lists the same segments.
	_, audio, _ := ts.get(t, "/live/dvr/t1.m3u8")
	if amsns, _ := listed(t, audio); fmt.Sprint(amsns) != fmt.Sprint(msns) {
		t.Errorf("audio lists %v, video %v", amsns, msns)
	}

	// Every listed segment is served; those older than the window, once
	// past the few kept for late players, are gone.
	seg := func(msn uint64) int {
		code, _, _ := ts.get(t, "/live/dvr/"+m.segmentName(0, msn))
		return code
	}
	for _, msn := range msns {
		if code := seg(msn); code != 200 {
			t.Errorf("listed segment %d: %d", msn, code)
		}
	}
	for msn := uint64(0); msn+keepUnlisted < msns[0]; msn++ {
		if code := seg(msn); code != 404 {
			t.Errorf("segment %d, older than the window: %d, want 404", msn, code)
		}
	}
	m.mu.RLock()
	kept := len(m.segments)
	m.mu.RUnlock()
	if kept > len(msns)+keepUnlisted+1 {
		t.Errorf("the muxer holds %d segments for a window of %d", kept, len(msns))
	}

	// The MPD offers the same window for time shifting.
	code, body, _ = ts.get(t, "/live/dvr/manifest.mpd")
	mpd := parseMPD(t, body)
	if code != 200 || mpd.Type != "dynamic" || len(mpd.Periods) != 1 {
		t.Fatalf("MPD: %d\n%s", code, body)
	}
	depth := strings.SplitN(strings.SplitN(body, `timeShiftBufferDepth="`, 2)[1], `"`, 2)[0]
	if d := parseISO(t, depth); d < 10 || d > 11.5 {
		t.Errorf("timeShiftBufferDepth %s, want the 10 s window", depth)
	}
	tpl := mpd.Periods[0].Sets[0].Reps[0].Template
	if len(tpl.S) != len(msns) || tpl.Start != msns[0] {
		t.Errorf("MPD lists %d segments from %d, the playlist %d from %d", len(tpl.S), tpl.Start, len(msns), msns[0])
	}
}

func TestNoDVRWindowListsPlaylistSegments(t *testing.T) {
	ts, m := publishDVR(t, Config{})
	_, body, _ := ts.get(t, "/live/dvr/t0.m3u8")
	msns, _ := listed(t, body)
	if len(msns) != 6 {
		t.Fatalf("playlist lists %d segments, want PlaylistSegments (6):\n%s", len(msns), body)
	}
	m.mu.RLock()
	kept := len(m.segments)
	m.mu.RUnlock()
	if kept != 6+keepUnlisted+1 {
		t.Errorf("the muxer holds %d segments, want %d", kept, 6+keepUnlisted+1)
	}
	// A window shorter than PlaylistSegments changes nothing.
	ts, _ = publishDVR(t, Config{DVRWindow: 3 * time.Second})
	_, body, _ = ts.get(t, "/live/dvr/t0.m3u8")
	if msns, _ := listed(t, body); len(msns) != 6 {
		t.Errorf("with a 3 s window the playlist lists %d segments, want 6", len(msns))
	}
}
