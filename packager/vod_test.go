package packager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// vodPeriodOf lays media out as a recording would: video and audio samples
// interleaved in time order in one file, the first DTS at from.
func vodPeriodOf(media *testmedia.Media, from time.Duration, start time.Time) VODPeriod {
	const videoTicks, audioTicks = 90000, 48000
	p := VODPeriod{
		Tracks:     tracksOf(media),
		Timescales: []uint32{videoTicks, audioTicks},
		Samples:    make([][]VODSample, 2),
		Start:      start,
	}
	var buf bytes.Buffer
	add := func(track int, dts int64, dur uint32, key bool, payload []byte) {
		p.Samples[track] = append(p.Samples[track], VODSample{
			DTS: dts, Duration: dur, Key: key, Offset: int64(buf.Len()), Size: uint32(len(payload)),
		})
		buf.Write(payload)
	}
	v0, a0 := stream.Ticks(from, videoTicks), stream.Ticks(from, audioTicks)
	frame := int64(videoTicks / media.FPS)
	vi, ai := 0, 0
	for vi < len(media.Frames) || ai < len(media.AUs) {
		vt := time.Duration(vi) * time.Second / time.Duration(media.FPS)
		at := time.Duration(ai) * 1024 * time.Second / audioTicks
		if vi < len(media.Frames) && (ai >= len(media.AUs) || vt <= at) {
			add(0, v0+int64(vi)*frame, uint32(frame), media.Keys[vi], media.Frames[vi])
			vi++
		} else {
			add(1, a0+int64(ai)*1024, 1024, true, media.AUs[ai])
			ai++
		}
	}
	p.Media = bytes.NewReader(buf.Bytes())
	return p
}

// serveVOD serves v below /vod/ on a test server.
func serveVOD(t *testing.T, v *VOD) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeVOD(w, r, v, strings.TrimPrefix(r.URL.Path, "/vod/"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func vodGet(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b, resp.Header
}

const vodQuery = "start=2024-05-01T10:00:00Z&end=2024-05-01T11:00:00%2B01:00"

var (
	vodT0    = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	uriRe    = regexp.MustCompile(`(?m)^[^#\n][^\n]*$|URI="([^"]*)"`)
	extinfRe = regexp.MustCompile(`#EXTINF:([0-9.]+),\n([^\n]+)\n`)
)

// twoPeriodVOD is 7 s of media recorded twice, the second time starting at
// an odd media time and a minute later.
func twoPeriodVOD(t *testing.T) (*VOD, *testmedia.Media) {
	media := testmedia.MakeMedia(t, 7)
	return &VOD{Periods: []VODPeriod{
		vodPeriodOf(media, 0, vodT0),
		vodPeriodOf(media, 3600*time.Second+137*time.Millisecond, vodT0.Add(time.Minute)),
	}}, media
}

func TestVODHLS(t *testing.T) {
	v, media := twoPeriodVOD(t)
	srv := serveVOD(t, v)
	base := srv.URL + "/vod/"

	code, body, hdr := vodGet(t, base+"index.m3u8?"+vodQuery)
	if code != 200 || hdr.Get("Content-Type") != mimeHLS || hdr.Get("Cache-Control") != cachePlaylist || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("multivariant: %d %v\n%s", code, hdr, body)
	}
	mv := string(body)
	for _, want := range []string{"#EXT-X-VERSION:7\n", "#EXT-X-INDEPENDENT-SEGMENTS\n", "BANDWIDTH=", ",AVERAGE-BANDWIDTH=",
		"RESOLUTION=320x240", `CODECS="avc1.`, `,mp4a.40.2"`, "FRAME-RATE=30.000", `TYPE=AUDIO,GROUP-ID="audio"`, `CHANNELS="2"`,
		`URI="t1.m3u8?` + vodQuery + `"`, "\nt0.m3u8?" + vodQuery + "\n"} {
		if !strings.Contains(mv, want) {
			t.Errorf("multivariant lacks %q:\n%s", want, mv)
		}
	}
	bw, _ := strconv.Atoi(regexp.MustCompile(`BANDWIDTH=(\d+)`).FindStringSubmatch(mv)[1])
	avg, _ := strconv.Atoi(regexp.MustCompile(`AVERAGE-BANDWIDTH=(\d+)`).FindStringSubmatch(mv)[1])
	if avg <= 0 || bw < avg {
		t.Errorf("BANDWIDTH %d, AVERAGE-BANDWIDTH %d", bw, avg)
	}

	for track, wantSamples := range []int{len(media.Frames), len(media.AUs)} {
		code, body, _ := vodGet(t, fmt.Sprintf("%st%d.m3u8?%s", base, track, vodQuery))
		pl := string(body)
		if code != 200 {
			t.Fatalf("t%d.m3u8: %d %s", track, code, pl)
		}
		// Audio segments hold the frames that start in the video
		// segment's span: they end up to a frame later.
		third := []string{"10:01:02.000Z", "10:01:02.005Z"}[track]
		for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:VOD\n", "#EXT-X-TARGETDURATION:" + []string{"2", "3"}[track] + "\n", "#EXT-X-ENDLIST\n",
			"#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:00:00.000Z\n", "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T10:01:00.000Z\n",
			"#EXT-X-PROGRAM-DATE-TIME:2024-05-01T" + third + "\n"} {
			if !strings.Contains(pl, want) {
				t.Errorf("t%d.m3u8 lacks %q:\n%s", track, want, pl)
			}
		}
		if strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 || strings.Count(pl, "#EXT-X-MAP:") != 2 || strings.Contains(pl, "#EXT-X-GAP") {
			t.Errorf("t%d.m3u8 wants 2 periods, one discontinuity, no gap:\n%s", track, pl)
		}
		for _, m := range uriRe.FindAllStringSubmatch(pl, -1) {
			uri := m[0]
			if m[1] != "" {
				uri = m[1]
			}
			if strings.Contains(uri, "/") || !strings.HasSuffix(uri, "?"+vodQuery) {
				t.Errorf("t%d.m3u8: URI %q is not relative with the query", track, uri)
			}
		}
		checkVODSegments(t, base, pl, track, wantSamples, []float64{7, 7.04}[track])
	}

	// A player decodes every frame of both periods.
	frames, audio := countFrames(t, base+"index.m3u8?"+vodQuery)
	if frames != 2*len(media.Frames) || !audio {
		t.Errorf("HLS decoded %d video frames (audio %v), want %d and audio", frames, audio, 2*len(media.Frames))
	}
}

// checkVODSegments fetches every segment of a media playlist: each one
// parses, video segments start on a keyframe and last at least the target
// (but the last of a period), timestamps run on from segment to segment,
// and each period's init and segments, put together, play.
func checkVODSegments(t *testing.T, base, pl string, track, wantSamples int, wantSeconds float64) {
	t.Helper()
	var file []byte
	samples, period := 0, -1
	next := uint64(0)
	var total float64
	extinfs := extinfRe.FindAllStringSubmatch(pl, -1)
	for i, m := range extinfs {
		d, _ := strconv.ParseFloat(m[1], 64)
		total += d
		uri := strings.TrimSuffix(m[2], "?"+vodQuery)
		f, ok := parseVODFileName(uri)
		if !ok || f.kind != fileSegment || f.track != track {
			t.Fatalf("segment URI %q", m[2])
		}
		if f.period != period {
			if period >= 0 {
				probeVOD(t, file, track, wantSamples, wantSeconds)
			}
			period = f.period
			code, init, hdr := vodGet(t, fmt.Sprintf("%st%d_p%d_init.mp4?%s", base, track, period, vodQuery))
			if code != 200 || hdr.Get("Cache-Control") != cacheMedia {
				t.Fatalf("init of period %d: %d %v", period, code, hdr)
			}
			file = append([]byte(nil), init...)
			next = 0
		}
		code, data, hdr := vodGet(t, base+m[2])
		if code != 200 {
			t.Fatalf("%s: %d %s", m[2], code, data)
		}
		if want := segmentMime(map[int]string{0: "video/mp4", 1: "audio/mp4"}[track]); hdr.Get("Content-Type") != want {
			t.Errorf("%s: Content-Type %q, want %q", uri, hdr.Get("Content-Type"), want)
		}
		var parts fmp4.Parts
		if err := parts.Unmarshal(data); err != nil || len(parts) != 1 || len(parts[0].Tracks) != 1 {
			t.Fatalf("%s: %d parts: %v", uri, len(parts), err)
		}
		pt := parts[0].Tracks[0]
		if next != 0 && pt.BaseTime != next {
			t.Errorf("%s starts at %d, the previous segment ends at %d", uri, pt.BaseTime, next)
		}
		var ticks uint64
		for _, s := range pt.Samples {
			ticks += uint64(s.Duration)
		}
		next = pt.BaseTime + ticks
		lastOfPeriod := i+1 == len(extinfs) || !strings.Contains(extinfs[i+1][2], fmt.Sprintf("_p%d_", period))
		if track == 0 {
			if pt.Samples[0].IsNonSyncSample {
				t.Errorf("%s does not start on a keyframe", uri)
			}
			if got := float64(ticks) / 90000; !lastOfPeriod && got < 2 || got > 2.5 || abs(int64((got-d)*1000)) > 1 {
				t.Errorf("%s lasts %.3f s, EXTINF %.3f", uri, got, d)
			}
		}
		samples += len(pt.Samples)
		file = append(file, data...)
	}
	probeVOD(t, file, track, wantSamples, wantSeconds)
	if samples != 2*wantSamples {
		t.Errorf("track %d: %d samples in the segments, want %d", track, samples, 2*wantSamples)
	}
	if total < 2*wantSeconds-0.001 || total > 2*wantSeconds+0.001 {
		t.Errorf("track %d: segments last %.3f s, want %.3f", track, total, 2*wantSeconds)
	}
}

// probeVOD decodes one period of one track, init and segments put together.
func probeVOD(t *testing.T, file []byte, track, wantFrames int, wantSeconds float64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "period.mp4")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,nb_read_frames:format=start_time,duration", "-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var probe struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Frames string `json:"nb_read_frames"`
		}
		Format struct {
			Start    string `json:"start_time"`
			Duration string
		}
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	frames, _ := strconv.Atoi(probe.Streams[0].Frames)
	start, _ := strconv.ParseFloat(probe.Format.Start, 64)
	end, _ := strconv.ParseFloat(probe.Format.Duration, 64)
	codec := []string{"h264", "aac"}[track]
	if s := probe.Streams[0]; s.Codec != codec || frames != wantFrames || end-start < wantSeconds-0.01 || end-start > wantSeconds+0.01 {
		t.Errorf("track %d period decodes as %s, %d frames, %.3f s; want %s, %d frames, %.3f s", track, s.Codec, frames, end-start, codec, wantFrames, wantSeconds)
	}
}

func TestVODDASH(t *testing.T) {
	v, media := twoPeriodVOD(t)
	srv := serveVOD(t, v)
	code, body, hdr := vodGet(t, srv.URL+"/vod/manifest.mpd?"+vodQuery)
	if code != 200 || hdr.Get("Content-Type") != "application/dash+xml" {
		t.Fatalf("MPD: %d %v\n%s", code, hdr, body)
	}
	mpd := parseMPD(t, string(body))
	if mpd.Type != "static" || !strings.Contains(string(body), `mediaPresentationDuration="PT14.000S"`) || len(mpd.Periods) != 2 {
		t.Fatalf("MPD:\n%s", body)
	}
	for i, p := range mpd.Periods {
		if want := []float64{0, 7}[i]; parseISO(t, p.Start) != want {
			t.Errorf("period %d starts at %s, want %v s", i, p.Start, want)
		}
		if len(p.Sets) != 2 {
			t.Fatalf("period %d: %d adaptation sets", i, len(p.Sets))
		}
		for track, set := range p.Sets {
			rep := set.Reps[0]
			tpl := rep.Template
			if tpl.Init != fmt.Sprintf("t%d_p%d_init.mp4?%s", track, i, vodQuery) ||
				tpl.Media != fmt.Sprintf("t%d_p%d_$Number$.m4s?%s", track, i, vodQuery) || tpl.Start != 0 {
				t.Errorf("period %d track %d: template %+v", i, track, tpl)
			}
			starts, end := segTimes(tpl.S)
			from := []time.Duration{0, 3600*time.Second + 137*time.Millisecond}[i]
			if tpl.PTO != stream.Ticks(from, uint32(tpl.Timescale)) || starts[0] != tpl.PTO || len(starts) != 4 {
				t.Errorf("period %d track %d: presentationTimeOffset %d, segments at %v", i, track, tpl.PTO, starts)
			}
			if d := float64(end-starts[0]) / float64(tpl.Timescale); d < 6.99 || d > 7.05 {
				t.Errorf("period %d track %d: timeline lasts %.3f s", i, track, d)
			}
			if rep.Bandwidth <= 0 || set.ContentType == "video" && (rep.Width != 320 || rep.Height != 240) {
				t.Errorf("period %d track %d: %+v", i, track, rep)
			}
			// Segment numbers from the template reach the same files HLS uses.
			for n := range starts {
				uri := strings.ReplaceAll(tpl.Media, "$Number$", strconv.Itoa(n))
				if code, _, _ := vodGet(t, srv.URL+"/vod/"+uri); code != 200 {
					t.Errorf("%s: %d", uri, code)
				}
			}
		}
	}
	// ffmpeg's DASH reader plays the first Period.
	one := serveVOD(t, &VOD{Periods: v.Periods[:1]})
	frames, audio := countFrames(t, one.URL+"/vod/manifest.mpd")
	if frames != len(media.Frames) || !audio {
		t.Errorf("DASH decoded %d video frames (audio %v), want %d and audio", frames, audio, len(media.Frames))
	}
}

func TestVODSegmentation(t *testing.T) {
	media := testmedia.MakeSizedMedia(t, 6, "160x120", "-g", "45", "-keyint_min", "45", "-sc_threshold", "0")
	p := vodPeriodOf(media, 0, vodT0)
	for _, tc := range []struct {
		target time.Duration
		want   []int // first video frame of each segment
	}{
		{0, []int{0, 90}},                                // default 2 s: keyframes every 1.5 s
		{time.Second, []int{0, 45, 90, 135}},             // every keyframe
		{1500 * time.Millisecond, []int{0, 45, 90, 135}}, // exactly on the target
		{time.Hour, []int{0}},
	} {
		v := &VOD{Periods: []VODPeriod{p}, SegmentDuration: tc.target}
		pl, err := layoutPeriod(v, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for seg := range pl.segments() {
			got = append(got, pl.starts[seg][0])
			// Audio goes where its DTS is: from the segment start on.
			start, _ := pl.span(0, seg)
			audio := pl.samples(1, seg)
			if seg > 0 && stream.FromTicks(audio[0].DTS, 48000) < start || stream.FromTicks(audio[0].DTS, 48000)-start >= 1024*time.Second/48000 {
				t.Errorf("target %v segment %d at %v: first audio at %v", tc.target, seg, start, stream.FromTicks(audio[0].DTS, 48000))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("target %v: segments start at frames %v, want %v", tc.target, got, tc.want)
		}
	}
}

// TestVODAudioGapAndMissingTrack: a segment without audio samples and a
// period without audio are listed as gaps, and their files are 404.
func TestVODAudioGapAndMissingTrack(t *testing.T) {
	media := testmedia.MakeMedia(t, 7)
	p := vodPeriodOf(media, 0, vodT0)
	var kept []VODSample
	for _, s := range p.Samples[1] {
		if d := stream.FromTicks(s.DTS, 48000); d < 2*time.Second || d >= 4*time.Second {
			kept = append(kept, s)
		}
	}
	p.Samples[1] = kept
	videoOnly := vodPeriodOf(media, 0, vodT0.Add(time.Minute))
	videoOnly.Tracks, videoOnly.Timescales, videoOnly.Samples = videoOnly.Tracks[:1], videoOnly.Timescales[:1], videoOnly.Samples[:1]
	srv := serveVOD(t, &VOD{Periods: []VODPeriod{p, videoOnly}})

	_, body, _ := vodGet(t, srv.URL+"/vod/t1.m3u8")
	pl := string(body)
	if strings.Count(pl, "#EXT-X-GAP\n") != 5 || strings.Count(pl, "#EXT-X-MAP:") != 1 || !strings.Contains(pl, "#EXT-X-GAP\n#EXTINF:2.00000,\nt1_p0_1.m4s\n") {
		t.Errorf("audio playlist wants a gap in period 0 and 4 in period 1:\n%s", pl)
	}
	for file, want := range map[string]int{"t1_p0_0.m4s": 200, "t1_p0_1.m4s": 404, "t1_p0_2.m4s": 200, "t1_p1_0.m4s": 404, "t1_p1_init.mp4": 404, "t0_p1_3.m4s": 200} {
		if code, _, _ := vodGet(t, srv.URL+"/vod/"+file); code != want {
			t.Errorf("%s: %d, want %d", file, code, want)
		}
	}
	_, body, _ = vodGet(t, srv.URL+"/vod/manifest.mpd")
	mpd := parseMPD(t, string(body))
	if len(mpd.Periods) != 2 || len(mpd.Periods[0].Sets) != 2 || len(mpd.Periods[1].Sets) != 1 {
		t.Errorf("MPD:\n%s", body)
	}
}

func TestVODBadRequests(t *testing.T) {
	v, _ := twoPeriodVOD(t)
	srv := serveVOD(t, v)
	for _, file := range []string{"", "index.m3u", "x.m3u8", "t2.m3u8", "t01.m3u8", "t0_p2_init.mp4", "t2_p0_init.mp4",
		"t0_p0_4.m4s", "t0_p0_01.m4s", "t0_p0_-1.m4s", "t0_p0_init.m4s", "t0_p0_0.mp4", "t0_0_0.m4s", "..%2Findex.m3u8",
		"t0_p0_99999999999999999999.m4s", "t0_p1048576_0.m4s"} {
		code, body, hdr := vodGet(t, srv.URL+"/vod/"+file)
		var e struct {
			Error string
			Code  int
		}
		if code != 404 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Code != 404 || e.Error == "" {
			t.Errorf("GET %q: %d %s, want a 404 JSON error", file, code, body)
		}
	}
	for method, want := range map[string]int{http.MethodPost: 405, http.MethodOptions: 204, http.MethodHead: 200} {
		req, _ := http.NewRequest(method, srv.URL+"/vod/t0_p1_2.m4s", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d, want %d", method, resp.StatusCode, want)
		}
		if method == http.MethodHead && (len(b) != 0 || resp.ContentLength <= 0 || resp.Header.Get("Content-Type") != "video/iso.segment") {
			t.Errorf("HEAD: %d bytes, Content-Length %d, %q", len(b), resp.ContentLength, resp.Header.Get("Content-Type"))
		}
	}
	for name, v := range map[string]*VOD{"nil": nil, "empty": {}} {
		if code, _, _ := vodGet(t, serveVOD(t, v).URL+"/vod/index.m3u8"); code != 404 {
			t.Errorf("%s VOD: %d, want 404", name, code)
		}
	}
}

type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestVODBrokenInput(t *testing.T) {
	media := testmedia.MakeMedia(t, 2)
	p := vodPeriodOf(media, 0, vodT0)
	short := p
	short.Media = bytes.NewReader(nil)
	failing := p
	failing.Media = failingReader{}
	mismatched := p
	mismatched.Timescales = p.Timescales[:1]
	for name, tc := range map[string]struct {
		p    VODPeriod
		file string
		want int
	}{
		"short media":   {short, "t0_p0_0.m4s", 500},
		"failing read":  {failing, "t1_p0_0.m4s", 500},
		"init is fine":  {failing, "t1_p0_init.mp4", 200},
		"bad tables":    {mismatched, "index.m3u8", 500},
		"bad segment":   {mismatched, "t0_p0_0.m4s", 500},
		"playlist only": {failing, "t0.m3u8", 200},
	} {
		code, body, _ := vodGet(t, serveVOD(t, &VOD{Periods: []VODPeriod{tc.p}}).URL+"/vod/"+tc.file)
		if code != tc.want || code == 500 && strings.Contains(string(body), "disk on fire") {
			t.Errorf("%s: %s: %d %s, want %d", name, tc.file, code, body, tc.want)
		}
	}
}

func TestRelQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                         "",
		vodQuery:                   "?" + vodQuery,
		`a="><$x'`:                 "?a=%22%3E%3C%24x%27",
		"t=2024-05-01T10:00:00+02": "?t=2024-05-01T10:00:00+02",
	} {
		if got := relQuery(raw); got != want {
			t.Errorf("relQuery(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestParseVODFileName(t *testing.T) {
	cases := map[string]vodFile{
		"index.m3u8":           {kind: fileMultivariant},
		"manifest.mpd":         {kind: fileMPD},
		"t3.m3u8":              {kind: fileMediaPlaylist, track: 3},
		"t1_p0_init.mp4":       {kind: fileInit, track: 1},
		"t0_p12_345.m4s":       {kind: fileSegment, period: 12, index: 345},
		"t63_p1048575_0.m4s":   {kind: fileSegment, track: 63, period: 1048575},
		"t0_p0_1073741823.m4s": {kind: fileSegment, index: 1<<30 - 1},
	}
	for name, want := range cases {
		got, ok := parseVODFileName(name)
		if !ok || got != want || got.name() != name {
			t.Errorf("parseVODFileName(%q) = %+v, %v; want %+v", name, got, ok, want)
		}
	}
	for _, bad := range []string{"", "t", "t.m3u8", "t64.m3u8", "t00.m3u8", "t+1.m3u8", "T0.m3u8", "t0_p0_init.m4s",
		"t0_p0_0.mp4", "t0_p0_0_0.m4s", "t0_0_0.m4s", "t0_p_0.m4s", "t0_p0_.m4s", "t0_p0_1073741824.m4s", "t0_p01_0.m4s",
		"t0_p0_x.m4s", "t0_p0_init1.mp4", "../t0.m3u8", "t0_p0_0.m4s?x", "t0_p0_ 1.m4s", "ab12_0_init3.mp4"} {
		if got, ok := parseVODFileName(bad); ok {
			t.Errorf("parseVODFileName(%q) = %+v, want refusal", bad, got)
		}
	}
}

func FuzzParseVODFileName(f *testing.F) {
	for _, s := range []string{"index.m3u8", "manifest.mpd", "t0.m3u8", "t1_p0_init.mp4", "t0_p3_12.m4s",
		"t0_p0_01.m4s", "t18446744073709551616.m3u8", "t0_p-1_0.m4s", "t0_p0_0_0.m4s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		vf, ok := parseVODFileName(name)
		if !ok {
			return
		}
		if vf.track < 0 || vf.track >= maxTracks || vf.period < 0 || vf.period >= maxVODPeriods || vf.index < 0 || vf.index >= maxVODSegments {
			t.Fatalf("%q parsed out of range: %+v", name, vf)
		}
		if vf.name() != name {
			t.Fatalf("%q parsed as %+v, which is named %q", name, vf, vf.name())
		}
	})
}
