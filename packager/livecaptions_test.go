package packager

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// fakeCaptions captions every stream with a cue per second, and has
// recognised up to processed.
type fakeCaptions struct {
	mu        sync.Mutex
	processed time.Duration
	asked     []int // sessions asked about
}

func (f *fakeCaptions) Captions(name string) (string, string, bool) {
	return "en", "English \"live\"", name == "live/cc"
}

func (f *fakeCaptions) Cues(name string, session int, from, to time.Duration) ([]captions.Cue, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, session)
	var out []captions.Cue
	for s := time.Duration(0); s < f.processed; s += time.Second {
		if s < to && s+500*time.Millisecond > from {
			out = append(out, captions.Cue{Start: s, End: s + 500*time.Millisecond, Text: "second " + s.String()})
		}
	}
	return out, to <= f.processed
}

func (f *fakeCaptions) set(d time.Duration) {
	f.mu.Lock()
	f.processed = d
	f.mu.Unlock()
}

var subsSegRe = regexp.MustCompile(`(?m)^([0-9a-f]+_subs_(\d+)\.vtt)$`)

func TestLiveCaptionsRendition(t *testing.T) {
	cc := &fakeCaptions{}
	ts := newTestServer(t, -1, Config{PlaylistSegments: 10, Captions: cc})
	media := testmedia.MakeMedia(t, 8)
	tracks := tracksOf(media)
	p, err := ts.hub.Publish("live/cc", tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	media.Publish(t, p, tracks, false, 0)

	// Wait for complete segments.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := ts.get(t, "/live/cc/t0.m3u8")
		if strings.Count(body, "#EXTINF") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segments: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body, _ := ts.get(t, "/live/cc/index.m3u8")
	if code != 200 || !strings.Contains(body, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English live",LANGUAGE="en"`) ||
		!strings.Contains(body, `URI="subs.m3u8"`) {
		t.Fatalf("multivariant lacks the subtitles rendition:\n%s", body)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#EXT-X-STREAM-INF:") && !strings.HasSuffix(line, `SUBTITLES="subs"`) {
			t.Errorf("variant without the subtitles group: %s", line)
		}
	}

	// Nothing recognised yet: no subtitle segment is listed.
	code, subs, _ := ts.get(t, "/live/cc/subs.m3u8")
	if code != 200 || subsSegRe.MatchString(subs) || !strings.Contains(subs, "#EXT-X-TARGETDURATION:") {
		t.Fatalf("subs playlist before recognition: %d\n%s", code, subs)
	}
	// Recognised up to 4.5 s: the segments that end by then are listed.
	cc.set(4500 * time.Millisecond)
	_, subs, _ = ts.get(t, "/live/cc/subs.m3u8")
	listed := subsSegRe.FindAllStringSubmatch(subs, -1)
	if len(listed) == 0 || len(listed) > 3 {
		t.Fatalf("subs playlist at 4.5 s lists %d segments:\n%s", len(listed), subs)
	}
	_, media0, _ := ts.get(t, "/live/cc/t0.m3u8")
	// Players stay far enough behind live for the captions to arrive.
	if m := regexp.MustCompile(`PART-HOLD-BACK=([0-9.]+),HOLD-BACK=([0-9.]+)`).FindStringSubmatch(media0); m == nil || m[1] != m[2] {
		t.Errorf("a captioned stream's hold-backs %v, want PART-HOLD-BACK = HOLD-BACK", m)
	}
	for _, l := range listed {
		if !strings.Contains(media0, "_"+l[2]+".m4s") {
			t.Errorf("subtitle segment %s has no media segment of the same number", l[1])
		}
	}
	code, vtt, hdr := ts.get(t, "/live/cc/"+listed[0][1])
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/vtt") {
		t.Fatalf("vtt: %d %v", code, hdr)
	}
	if !strings.HasPrefix(vtt, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:") {
		t.Fatalf("vtt header:\n%s", vtt)
	}
	got, err := captions.ParseVTT(strings.NewReader(vtt))
	if err != nil || len(got) == 0 || got[0].Start != 0 || got[0].Text != "second 0s" {
		t.Fatalf("first segment's cues %+v (%v):\n%s", got, err, vtt)
	}
	// A segment not final yet is 404, so no player caches it empty.
	all := regexp.MustCompile(`(?m)^[0-9a-f]+_0_(\d+)\.m4s$`).FindAllStringSubmatch(media0, -1)
	last := all[len(all)-1][1]
	prefix := strings.Split(listed[0][1], "_")[0]
	if code, _, _ := ts.get(t, "/live/cc/"+prefix+"_subs_"+last+".vtt"); code != 404 {
		t.Errorf("an unfinished subtitle segment: %d, want 404", code)
	}

	// The end of the stream lists every segment and ends the playlist.
	p.Close(nil)
	cc.set(time.Hour)
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, subs, _ = ts.get(t, "/live/cc/subs.m3u8")
		if strings.Contains(subs, "#EXT-X-ENDLIST") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subs playlist never ended:\n%s", subs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, media0, _ = ts.get(t, "/live/cc/t0.m3u8")
	if a, b := strings.Count(subs, "#EXTINF"), strings.Count(media0, "#EXTINF"); a != b {
		t.Errorf("ended: %d subtitle segments for %d media segments", a, b)
	}

	// A stream without captions has none.
	if code, _, _ := ts.get(t, "/live/other/subs.m3u8"); code != 404 {
		t.Errorf("subs of an uncaptioned stream: %d", code)
	}
}
