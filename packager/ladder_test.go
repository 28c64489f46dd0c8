package packager

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// staticLadders maps each source to its variants.
type staticLadders map[string][]string

func (l staticLadders) Variants(name string) []string { return l[name] }

func (l staticLadders) SourceOf(rendition string) (string, bool) {
	for src, vs := range l {
		if rendition != src && slices.Contains(vs, rendition) {
			return src, true
		}
	}
	return "", false
}

func TestRelDir(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"live/cam1", "live/cam1", ""},
		{"live/cam1", "live/cam1/720p", "720p/"},
		{"live/cam1", "live/cam1_720p", "../cam1_720p/"},
		{"live/cam1", "other/x/y", "../../other/x/y/"},
	} {
		if got := relDir(c.from, c.to); got != c.want {
			t.Errorf("relDir(%q, %q) = %q, want %q", c.from, c.to, got, c.want)
		}
	}
}

// hlsSeg is one segment of a media playlist.
type hlsSeg struct {
	msn uint64
	pdt time.Time
	dur float64
	uri string
}

func parseMediaPlaylist(t *testing.T, body string) []hlsSeg {
	t.Helper()
	var out []hlsSeg
	var msn uint64
	var pdt time.Time
	var dur float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			n, _ := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			msn = n
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			var err error
			if pdt, err = time.Parse("2006-01-02T15:04:05.000Z", strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:")); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			dur, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
		case line != "" && !strings.HasPrefix(line, "#"):
			out = append(out, hlsSeg{msn: msn, pdt: pdt, dur: dur, uri: line})
			msn++
		}
	}
	return out
}

var streamInfRe = regexp.MustCompile(`#EXT-X-STREAM-INF:(.*)\n(.*)\n`)

// attrs splits an attribute list; quoted values lose their quotes.
func attrs(list string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`([A-Z-]+)=("[^"]*"|[^,]*)`).FindAllStringSubmatch(list, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	return out
}

// TestLadder publishes a source and two renditions of it, made by ffmpeg at
// smaller sizes with keyframes forced at the source's keyframe times and
// published with the same timestamps (one starts mid-stream, on a keyframe
// that starts no source segment), and checks the source's multivariant
// playlist and MPD and that the renditions' segments line up.
func TestLadder(t *testing.T) {
	const seconds = 8
	forced := []string{"-g", "300", "-sc_threshold", "0", "-force_key_frames", "expr:gte(t,n_forced*1)"}
	src := testmedia.MakeSizedMedia(t, seconds, "640x360", "-g", "30", "-sc_threshold", "0")
	r270 := testmedia.MakeSizedMedia(t, seconds, "480x270", forced...)
	r180 := testmedia.MakeSizedMedia(t, seconds, "320x180", forced...)
	if !slices.Equal(src.Keys, r270.Keys) || !slices.Equal(src.Keys, r180.Keys) {
		t.Fatal("the renditions' keyframes are not at the source's")
	}
	const name = "live/lad"
	ladders := staticLadders{name: {name, name + "/270p", name + "/180p"}}
	ts := newTestServer(t, -1, Config{PlaylistSegments: 10, Ladders: ladders})

	publish := func(name string, m *testmedia.Media, skip time.Duration) *stream.Publisher {
		tracks := tracksOf(m)
		p, err := ts.hub.Publish(name, tracks, stream.PublishOptions{Protocol: "test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close(nil) })
		m.PublishPart(t, p, tracks, false, 0, skip)
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitSegments := func(name string, n int) *muxer {
		t.Helper()
		m := ts.pkg.muxer(name)
		if m == nil || !m.waitFor(ctx, func() bool { return len(m.completeListed()) >= n }) {
			t.Fatalf("%s: fewer than %d complete segments", name, n)
		}
		return m
	}

	// The source goes first, as the transcoder's output lags behind it.
	publish(name, src, 0)
	srcM := waitSegments(name, 3)
	code, single, _ := ts.get(t, "/"+name+"/index.m3u8")
	if code != 200 || strings.Count(single, "#EXT-X-STREAM-INF") != 1 {
		t.Fatalf("before the renditions: %d\n%s", code, single)
	}
	publish(name+"/270p", r270, 0)
	// This one joins at 0.5 s: its first keyframe, at 1 s, starts no source
	// segment (they start every 2 s), so it begins at 2 s.
	p180 := publish(name+"/180p", r180, 500*time.Millisecond)
	m270 := waitSegments(name+"/270p", 3)
	m180 := waitSegments(name+"/180p", 2)

	// Multivariant playlist.
	code, mv, _ := ts.get(t, "/"+name+"/index.m3u8")
	if code != 200 {
		t.Fatalf("multivariant: %d\n%s", code, mv)
	}
	infs := streamInfRe.FindAllStringSubmatch(mv, -1)
	if len(infs) != 3 {
		t.Fatalf("want 3 variants:\n%s", mv)
	}
	if n := strings.Count(mv, "#EXT-X-MEDIA:TYPE=AUDIO"); n != 1 || !strings.Contains(mv, `GROUP-ID="audio"`) || !strings.Contains(mv, `URI="t1.m3u8"`) {
		t.Errorf("want one audio rendition, the source's:\n%s", mv)
	}
	for i, want := range []struct {
		uri, res string
		m        *muxer
	}{{"t0.m3u8", "640x360", srcM}, {"270p/t0.m3u8", "480x270", m270}, {"180p/t0.m3u8", "320x180", m180}} {
		a := attrs(infs[i][1])
		if infs[i][2] != want.uri || a["RESOLUTION"] != want.res || a["AUDIO"] != "audio" || a["FRAME-RATE"] != "30.000" {
			t.Errorf("variant %d: %q %v, want %s at %s", i, infs[i][2], a, want.uri, want.res)
		}
		if !regexp.MustCompile(`^avc1\.[0-9a-f]{6},mp4a\.40\.2$`).MatchString(a["CODECS"]) {
			t.Errorf("variant %d: CODECS %q", i, a["CODECS"])
		}
		want.m.mu.RLock()
		bw := want.m.bandwidth(0) + want.m.bandwidth(1)
		want.m.mu.RUnlock()
		peak, _ := strconv.Atoi(a["BANDWIDTH"])
		avg, _ := strconv.Atoi(a["AVERAGE-BANDWIDTH"])
		if peak != bw || avg <= 0 || avg > peak {
			t.Errorf("variant %d: BANDWIDTH %d AVERAGE-BANDWIDTH %d, want %d and an average below it", i, peak, avg, bw)
		}
	}

	// Segments line up: the same start times (program date times), the same
	// durations, the same numbers and the same tfdt.
	type segInfo struct {
		seg  hlsSeg
		tfdt uint64
	}
	byTime := func(dir string) map[time.Time]segInfo {
		_, body, _ := ts.get(t, "/"+name+"/"+dir+"t0.m3u8")
		out := map[time.Time]segInfo{}
		for _, s := range parseMediaPlaylist(t, body) {
			code, data, _ := ts.get(t, "/"+name+"/"+dir+s.uri)
			var parts fmp4.Parts
			if code != 200 || parts.Unmarshal([]byte(data)) != nil || len(parts) == 0 {
				t.Fatalf("%s%s: %d", dir, s.uri, code)
			}
			out[s.pdt] = segInfo{s, parts[0].Tracks[0].BaseTime}
		}
		return out
	}
	srcSegs := byTime("")
	for _, dir := range []string{"270p/", "180p/"} {
		segs := byTime(dir)
		if len(segs) < 2 {
			t.Fatalf("%s: %d segments", dir, len(segs))
		}
		for pdt, s := range segs {
			o, ok := srcSegs[pdt]
			switch {
			case !ok:
				t.Errorf("%s segment %d starts at %v, where no source segment starts", dir, s.seg.msn, pdt)
			case o.seg.dur != s.seg.dur || o.tfdt != s.tfdt || o.seg.msn != s.seg.msn:
				t.Errorf("%s segment %d (%.5f s, tfdt %d) differs from the source's %d (%.5f s, tfdt %d)",
					dir, s.seg.msn, s.seg.dur, s.tfdt, o.seg.msn, o.seg.dur, o.tfdt)
			}
		}
	}
	m180.mu.RLock()
	first180 := m180.segments[0].start
	m180.mu.RUnlock()
	if first180 != 2*time.Second {
		t.Errorf("the rendition that joined at 0.5 s starts at %v, want at the source's segment at 2 s", first180)
	}

	// MPD: one video AdaptationSet with a Representation per variant, one
	// audio AdaptationSet.
	code, body, _ := ts.get(t, "/"+name+"/manifest.mpd")
	if code != 200 {
		t.Fatalf("MPD: %d\n%s", code, body)
	}
	mpd := parseMPD(t, body)
	if len(mpd.Periods) != 1 || len(mpd.Periods[0].Sets) != 2 {
		t.Fatalf("want one period with two adaptation sets:\n%s", body)
	}
	video, audio := mpd.Periods[0].Sets[0], mpd.Periods[0].Sets[1]
	if video.ContentType != "video" || len(video.Reps) != 3 || audio.ContentType != "audio" || len(audio.Reps) != 1 {
		t.Fatalf("want 3 video representations and 1 audio:\n%s", body)
	}
	srcStarts := map[int64]int64{}
	for i, r := range video.Reps {
		dir := []string{"", "270p/", "180p/"}[i]
		width := []int{640, 480, 320}[i]
		tpl := r.Template
		if r.Width != width || !strings.HasPrefix(tpl.Media, dir) || !strings.HasPrefix(tpl.Init, dir) || strings.Contains(tpl.Media[len(dir):], "/") {
			t.Errorf("representation %d: %dx%d, media %q, init %q: want width %d in %q", i, r.Width, r.Height, tpl.Media, tpl.Init, width, dir)
		}
		if tpl.PTO != video.Reps[0].Template.PTO {
			t.Errorf("representation %d: presentationTimeOffset %d, the source's is %d", i, tpl.PTO, video.Reps[0].Template.PTO)
		}
		starts, _ := segTimes(tpl.S)
		for j, st := range starts {
			d := tpl.S[j].D
			if i == 0 {
				srcStarts[st] = d
			} else if sd, ok := srcStarts[st]; !ok || sd != d {
				t.Errorf("representation %d: segment at %d (+%d) is not one of the source's", i, st, d)
			}
		}
		// The URLs resolve against the MPD's folder.
		seg := strings.ReplaceAll(tpl.Media, "$Number$", strconv.FormatUint(tpl.Start, 10))
		for _, f := range []string{seg, tpl.Init} {
			if code, _, _ := ts.get(t, "/"+name+"/"+f); code != 200 {
				t.Errorf("representation %d: %s: %d", i, f, code)
			}
		}
	}

	// ffprobe, as a player, finds every variant.
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	out, err := exec.CommandContext(pctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height",
		"-of", "csv=p=0", ts.srv.URL+"/"+name+"/index.m3u8").CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	for _, res := range []string{"video,640,360", "video,480,270", "video,320,180"} {
		if !strings.Contains(string(out), res) {
			t.Errorf("ffprobe does not see %s:\n%s", res, out)
		}
	}

	// A rendition that ends drops out.
	p180.Close(nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, mv, _ = ts.get(t, "/"+name+"/index.m3u8")
		_, body, _ = ts.get(t, "/"+name+"/manifest.mpd")
		if !strings.Contains(mv, "180p/") && !strings.Contains(body, "180p/") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ended rendition is still offered:\n%s\n%s", mv, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(mv, "#EXT-X-STREAM-INF"); n != 2 {
		t.Errorf("after one rendition ended, %d variants:\n%s", n, mv)
	}
	if code, pl, _ := ts.get(t, fmt.Sprintf("/%s/270p/t0.m3u8", name)); code != 200 || !strings.Contains(pl, "#EXTINF") {
		t.Errorf("270p playlist: %d", code)
	}
}

// TestLadderAfterReconnect makes the source reconnect: its renditions come
// back with timestamps that start from zero again, as the source's do, and
// must still line up with it in the new period. One rendition only starts
// after the reconnect.
func TestLadderAfterReconnect(t *testing.T) {
	const seconds = 4
	forced := []string{"-g", "300", "-sc_threshold", "0", "-force_key_frames", "expr:gte(t,n_forced*1)"}
	src := testmedia.MakeSizedMedia(t, seconds, "640x360", "-g", "30", "-sc_threshold", "0")
	r270 := testmedia.MakeSizedMedia(t, seconds, "480x270", forced...)
	r180 := testmedia.MakeSizedMedia(t, seconds, "320x180", forced...)
	const name = "live/lre"
	ladders := staticLadders{name: {name, name + "/270p", name + "/180p"}}
	ts := newTestServer(t, 5*time.Second, Config{PlaylistSegments: 10, Ladders: ladders})
	var pubs []*stream.Publisher
	t.Cleanup(func() {
		for _, p := range pubs {
			p.Close(nil)
		}
	})
	publish := func(name string, m *testmedia.Media) {
		tracks := tracksOf(m)
		p, err := ts.hub.Publish(name, tracks, stream.PublishOptions{Protocol: "test"})
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
		m.Publish(t, p, tracks, false, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor := func(name, what string, cond func(m *muxer) bool) {
		t.Helper()
		m := ts.pkg.muxer(name)
		if m == nil || !m.waitFor(ctx, func() bool { return cond(m) }) {
			t.Fatalf("%s: %s never happened", name, what)
		}
	}
	segsInPeriod := func(id, n int) func(m *muxer) bool {
		return func(m *muxer) bool {
			c := 0
			for _, s := range m.completeListed() {
				if s.period.id == id {
					c++
				}
			}
			return c >= n
		}
	}

	publish(name, src)
	waitFor(name, "a segment", segsInPeriod(1, 1))
	publish(name+"/270p", r270)
	waitFor(name+"/270p", "a segment", segsInPeriod(1, 1))
	for _, p := range pubs {
		p.Close(nil)
	}
	time.Sleep(200 * time.Millisecond)
	publish(name, src)
	waitFor(name, "the second session", segsInPeriod(2, 1))
	publish(name+"/270p", r270)
	publish(name+"/180p", r180)
	waitFor(name+"/270p", "the second session", segsInPeriod(2, 1))
	waitFor(name+"/180p", "a segment", segsInPeriod(1, 1))

	// HLS: the same program date times, durations, numbers and
	// discontinuities.
	type entry struct {
		msn  uint64
		dur  float64
		disc int
	}
	playlist := func(dir string) (map[time.Time]entry, string) {
		_, body, _ := ts.get(t, "/"+name+"/"+dir+"t0.m3u8")
		out := map[time.Time]entry{}
		disc := 0
		if m := regexp.MustCompile(`#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)`).FindStringSubmatch(body); m != nil {
			disc, _ = strconv.Atoi(m[1])
		}
		segs := parseMediaPlaylist(t, body)
		// Count the discontinuities before each segment.
		blocks := strings.Split(body, "#EXT-X-PROGRAM-DATE-TIME:")
		for i, s := range segs {
			if strings.Contains(blocks[i], "#EXT-X-DISCONTINUITY\n") {
				disc++
			}
			out[s.pdt] = entry{s.msn, s.dur, disc}
		}
		return out, body
	}
	srcPl, srcBody := playlist("")
	for _, dir := range []string{"270p/", "180p/"} {
		pl, body := playlist(dir)
		if len(pl) == 0 {
			t.Fatalf("%s: no segments", dir)
		}
		for pdt, e := range pl {
			if o, ok := srcPl[pdt]; !ok || o != e {
				t.Errorf("%s: segment at %v is %+v, the source's %+v\n%s\n%s", dir, pdt, e, o, body, srcBody)
			}
		}
	}

	// DASH: two contiguous periods; in each, the renditions share the
	// source's presentationTimeOffset and segment times.
	_, body, _ := ts.get(t, "/"+name+"/manifest.mpd")
	mpd := parseMPD(t, body)
	if len(mpd.Periods) != 2 {
		t.Fatalf("want 2 periods:\n%s", body)
	}
	var prevEnd float64
	for i, p := range mpd.Periods {
		video := p.Sets[0]
		if want := []int{2, 3}[i]; video.ContentType != "video" || len(video.Reps) != want {
			t.Fatalf("period %s: want %d video representations:\n%s", p.ID, want, body)
		}
		tpl0 := video.Reps[0].Template
		starts0, end0 := segTimes(tpl0.S)
		if start := parseISO(t, p.Start); i > 0 && (start-prevEnd > 0.000002 || prevEnd-start > 0.000002) {
			t.Errorf("period %s starts at %f, the previous one ends at %f", p.ID, start, prevEnd)
		}
		prevEnd = parseISO(t, p.Start) + float64(end0-tpl0.PTO)/float64(tpl0.Timescale)
		if tpl0.PTO != starts0[0] {
			t.Errorf("period %s: presentationTimeOffset %d, first segment at %d", p.ID, tpl0.PTO, starts0[0])
		}
		for _, r := range video.Reps[1:] {
			starts, _ := segTimes(r.Template.S)
			if r.Template.PTO != tpl0.PTO || !slices.Contains(starts0, starts[0]) {
				t.Errorf("period %s: %s has presentationTimeOffset %d and starts at %d; the source %d and %v", p.ID, r.ID, r.Template.PTO, starts[0], tpl0.PTO, starts0)
			}
		}
	}
}
