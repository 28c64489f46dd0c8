package packager

import (
	"context"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// mpdDoc is the part of an MPD the tests read.
type mpdDoc struct {
	Type    string `xml:"type,attr"`
	Periods []struct {
		ID    string `xml:"id,attr"`
		Start string `xml:"start,attr"`
		Sets  []struct {
			ContentType string `xml:"contentType,attr"`
			Reps        []struct {
				ID        string `xml:"id,attr"`
				Codecs    string `xml:"codecs,attr"`
				Bandwidth int    `xml:"bandwidth,attr"`
				Width     int    `xml:"width,attr"`
				Height    int    `xml:"height,attr"`
				Template  struct {
					Timescale int64  `xml:"timescale,attr"`
					PTO       int64  `xml:"presentationTimeOffset,attr"`
					Init      string `xml:"initialization,attr"`
					Media     string `xml:"media,attr"`
					Start     uint64 `xml:"startNumber,attr"`
					S         []struct {
						T *int64 `xml:"t,attr"`
						D int64  `xml:"d,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

func parseMPD(t *testing.T, body string) *mpdDoc {
	t.Helper()
	var d mpdDoc
	if err := xml.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("MPD: %v\n%s", err, body)
	}
	return &d
}

// parseISO reads the PT%fS durations the packager writes.
func parseISO(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(s, "PT"), "S"), 64)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return v
}

// segTimes expands a SegmentTimeline into start times, in ticks.
func segTimes(ss []struct {
	T *int64 `xml:"t,attr"`
	D int64  `xml:"d,attr"`
}) (starts []int64, end int64) {
	for _, s := range ss {
		if s.T != nil {
			end = *s.T
		}
		starts = append(starts, end)
		end += s.D
	}
	return starts, end
}

// TestDASHReconnectPeriodsAreContiguous publishes two sessions whose
// timestamps do not start at zero, with a pause between them, and checks the
// MPD: the second Period starts exactly where the first one's media ends,
// and each Period's presentationTimeOffset is the time of its first
// segment, so that a player finds media at every Period start.
func TestDASHReconnectPeriodsAreContiguous(t *testing.T) {
	media := testmedia.MakeMedia(t, 4)
	ts := newTestServer(t, 5*time.Second, Config{PlaylistSegments: 10})
	for session, from := range []time.Duration{21 * time.Millisecond, 500 * time.Millisecond} {
		tracks := tracksOf(media)
		p, err := ts.hub.Publish("live/dre", tracks, stream.PublishOptions{Protocol: "test"})
		if err != nil {
			t.Fatalf("session %d: %v", session, err)
		}
		media.Publish(t, p, tracks, false, from)
		p.Close(nil)
		time.Sleep(300 * time.Millisecond) // the time a reconnect takes
	}
	m := ts.pkg.muxer("live/dre")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The second session's last segment completes only when the stream
	// ends; wait for its first one.
	if !m.waitFor(ctx, func() bool { return m.period != nil && m.period.id == 2 && len(m.completeListed()) >= 3 }) {
		t.Fatal("second session was not packaged")
	}
	code, body, _ := ts.get(t, "/live/dre/manifest.mpd")
	if code != 200 {
		t.Fatalf("MPD: %d\n%s", code, body)
	}
	mpd := parseMPD(t, body)
	if len(mpd.Periods) != 2 {
		t.Fatalf("want 2 periods:\n%s", body)
	}
	var prevEnd float64
	for i, p := range mpd.Periods {
		start := parseISO(t, p.Start)
		var videoEnd float64
		for _, set := range p.Sets {
			if len(set.Reps) != 1 {
				t.Fatalf("period %s: %d representations", p.ID, len(set.Reps))
			}
			tpl := set.Reps[0].Template
			starts, end := segTimes(tpl.S)
			first := starts[0]
			switch set.ContentType {
			case "video":
				if tpl.PTO != first {
					t.Errorf("period %s video: presentationTimeOffset %d, first segment at %d", p.ID, tpl.PTO, first)
				}
				videoEnd = start + float64(end-tpl.PTO)/float64(tpl.Timescale)
			case "audio":
				// Audio starts with the frame playing at the first video
				// frame: at most one AAC frame early, never late.
				if first > tpl.PTO || tpl.PTO-first >= 1024 {
					t.Errorf("period %s audio: presentationTimeOffset %d, first segment at %d", p.ID, tpl.PTO, first)
				}
			}
		}
		if i == 0 {
			// The first Period keeps media time on the wall clock.
			if math.Abs(start-0.021) > 0.0015 {
				t.Errorf("first period starts at %.3f s, want its first sample's time 0.021", start)
			}
		} else if math.Abs(start-prevEnd) > 0.0015 {
			t.Errorf("period %s starts at %.3f s, the previous one ends at %.3f s: not contiguous\n%s", p.ID, start, prevEnd, body)
		}
		prevEnd = videoEnd
	}
	// HLS is unchanged: one discontinuity between the sessions.
	_, pl, _ := ts.get(t, "/live/dre/t0.m3u8")
	if strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Errorf("media playlist:\n%s", pl)
	}
}
