package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mps-dev/mps/test/testmedia"
)

// variantPeriod lays out the video of each of videos as one track each (a
// ladder's rungs), then the audio of the first, in one buffer. shift[i]
// moves video i's timestamps, in 90 kHz ticks.
func variantPeriod(videos []*testmedia.Media, shift []int64) VODPeriod {
	const videoTicks, audioTicks = 90000, 48000
	var p VODPeriod
	var buf bytes.Buffer
	for i, m := range videos {
		v := *m.Video
		v.Index = i
		p.Tracks = append(p.Tracks, &v)
		p.Timescales = append(p.Timescales, videoTicks)
		frame := int64(videoTicks / m.FPS)
		var ss []VODSample
		for j, f := range m.Frames {
			ss = append(ss, VODSample{DTS: shift[i] + int64(j)*frame, Duration: uint32(frame), Key: m.Keys[j],
				Offset: int64(buf.Len()), Size: uint32(len(f))})
			buf.Write(f)
		}
		p.Samples = append(p.Samples, ss)
	}
	a := *videos[0].Audio
	a.Index = len(videos)
	p.Tracks = append(p.Tracks, &a)
	p.Timescales = append(p.Timescales, audioTicks)
	var ss []VODSample
	for j, au := range videos[0].AUs {
		ss = append(ss, VODSample{DTS: int64(j) * 1024, Duration: 1024, Key: true, Offset: int64(buf.Len()), Size: uint32(len(au))})
		buf.Write(au)
	}
	p.Samples = append(p.Samples, ss)
	p.Media = bytes.NewReader(buf.Bytes())
	return p
}

var (
	variantInfRe = regexp.MustCompile(`#EXT-X-STREAM-INF:([^\n]*)\n([^\n]+)\n`)
	extinfOnly   = regexp.MustCompile(`#EXTINF:([0-9.]+),`)
)

// segmentStart parses a served segment: its tfdt and whether its first
// sample is a sync sample.
func segmentStart(t *testing.T, data []byte) (base uint64, key bool, samples int) {
	t.Helper()
	var parts fmp4.Parts
	if err := parts.Unmarshal(data); err != nil || len(parts) != 1 || len(parts[0].Tracks) != 1 {
		t.Fatalf("segment: %d parts: %v", len(parts), err)
	}
	pt := parts[0].Tracks[0]
	return pt.BaseTime, !pt.Samples[0].IsNonSyncSample, len(pt.Samples)
}

// TestVODVariants packages two renditions of one video (a ladder of two
// rungs, keyframes every second on both) and the audio as one presentation
// with Variants: the multivariant playlist offers both with the one audio
// group, the MPD has one video AdaptationSet with two Representations, and
// the segments of both start at the same times, on keyframes. WriteFiles
// writes the same bytes ServeVOD serves, and the folder plays.
func TestVODVariants(t *testing.T) {
	big := testmedia.MakeSizedMedia(t, 5, "320x240", "-g", "30")
	small := testmedia.MakeSizedMedia(t, 5, "160x120", "-g", "30")
	v := &VOD{Periods: []VODPeriod{variantPeriod([]*testmedia.Media{big, small}, []int64{0, 0})}, Variants: true}
	srv := serveVOD(t, v)
	base := srv.URL + "/vod/"

	code, body, _ := vodGet(t, base+"index.m3u8")
	mv := string(body)
	infs := variantInfRe.FindAllStringSubmatch(mv, -1)
	if code != 200 || len(infs) != 2 || strings.Count(mv, "#EXT-X-MEDIA:TYPE=AUDIO") != 1 || !strings.Contains(mv, `URI="t2.m3u8"`) {
		t.Fatalf("multivariant: %d\n%s", code, mv)
	}
	for i, want := range []string{"RESOLUTION=320x240", "RESOLUTION=160x120"} {
		attrs := infs[i][1]
		for _, w := range []string{want, `AUDIO="audio"`, `CODECS="avc1.`, `,mp4a.40.2"`, "FRAME-RATE=30.000"} {
			if !strings.Contains(attrs, w) {
				t.Errorf("variant %d lacks %s: %s", i, w, attrs)
			}
		}
		if infs[i][2] != fmt.Sprintf("t%d.m3u8", i) {
			t.Errorf("variant %d plays %q", i, infs[i][2])
		}
	}

	// Both renditions are cut at the same times, on keyframes.
	var lists [2][]string
	for track := range 3 {
		_, body, _ := vodGet(t, fmt.Sprintf("%st%d.m3u8", base, track))
		pl := string(body)
		if !strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") {
			t.Fatalf("t%d.m3u8:\n%s", track, pl)
		}
		if track < 2 {
			for _, m := range extinfOnly.FindAllStringSubmatch(pl, -1) {
				lists[track] = append(lists[track], m[1])
			}
		}
	}
	if len(lists[0]) != 3 || strings.Join(lists[0], " ") != strings.Join(lists[1], " ") {
		t.Fatalf("EXTINF of the variants differ: %v and %v", lists[0], lists[1])
	}
	for seg := range lists[0] {
		var bases [2]uint64
		for track := range 2 {
			code, data, _ := vodGet(t, fmt.Sprintf("%st%d_p0_%d.m4s", base, track, seg))
			if code != 200 {
				t.Fatalf("t%d segment %d: %d", track, seg, code)
			}
			b, key, _ := segmentStart(t, data)
			if !key {
				t.Errorf("t%d segment %d does not start on a keyframe", track, seg)
			}
			bases[track] = b
		}
		if bases[0] != bases[1] || bases[0] != uint64(seg)*2*90000 {
			t.Errorf("segment %d starts at %v, want both at %d", seg, bases, seg*2*90000)
		}
	}

	_, body, _ = vodGet(t, base+"manifest.mpd")
	mpd := parseMPD(t, string(body))
	if len(mpd.Periods) != 1 || len(mpd.Periods[0].Sets) != 2 {
		t.Fatalf("MPD:\n%s", body)
	}
	video, audio := mpd.Periods[0].Sets[0], mpd.Periods[0].Sets[1]
	if video.ContentType != "video" || len(video.Reps) != 2 || audio.ContentType != "audio" || len(audio.Reps) != 1 {
		t.Fatalf("MPD sets:\n%s", body)
	}
	for i, rep := range video.Reps {
		w, h := []int{320, 160}[i], []int{240, 120}[i]
		starts, _ := segTimes(rep.Template.S)
		if rep.Width != w || rep.Height != h || rep.Template.Media != fmt.Sprintf("t%d_p0_$Number$.m4s", i) ||
			fmt.Sprint(starts) != fmt.Sprint([]int64{0, 180000, 360000}) {
			t.Errorf("representation %d: %dx%d %s at %v", i, rep.Width, rep.Height, rep.Template.Media, starts)
		}
	}

	// The files written are those served, and the folder plays.
	dir := t.TempDir()
	names, err := v.WriteFiles(context.Background(), dir, VODHLS|VODDASH)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 5+3*(1+3) || names[0] != "index.m3u8" {
		t.Fatalf("wrote %v", names)
	}
	for _, name := range names {
		code, served, _ := vodGet(t, base+name)
		written, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || code != 200 || !bytes.Equal(served, written) {
			t.Errorf("%s: written %d bytes (%v), served %d bytes (%d)", name, len(written), err, len(served), code)
		}
	}
	frames := decodedVideoFrames(t, filepath.Join(dir, "index.m3u8"))
	if len(frames) != 2 || frames[0] != len(big.Frames) || frames[1] != len(small.Frames) {
		t.Errorf("HLS folder decodes %v video frames, want %d per variant", frames, len(big.Frames))
	}

	// Without Variants the same tracks play as before: one variant, and
	// an AdaptationSet per track.
	v.Variants = false
	_, body, _ = vodGet(t, base+"index.m3u8")
	if n := strings.Count(string(body), "#EXT-X-STREAM-INF"); n != 1 {
		t.Errorf("without variants: %d variants\n%s", n, body)
	}
	_, body, _ = vodGet(t, base+"manifest.mpd")
	if sets := parseMPD(t, string(body)).Periods[0].Sets; len(sets) != 3 {
		t.Errorf("without variants: %d adaptation sets", len(sets))
	}
}

// decodedVideoFrames decodes every video stream of path with ffprobe.
func decodedVideoFrames(t *testing.T, path string) []int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames",
		"-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var probe struct {
		Streams []struct {
			Type   string `json:"codec_type"`
			Frames string `json:"nb_read_frames"`
		}
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatal(err)
	}
	var frames []int
	for _, s := range probe.Streams {
		if s.Type == "video" {
			var n int
			fmt.Sscan(s.Frames, &n)
			frames = append(frames, n)
		}
	}
	return frames
}

// TestVODVariantAlignment: a variant whose keyframes are a frame off the
// driving track's is cut on them; one without keyframes at the driving
// track's cuts makes the presentation fail to lay out, with a clear error.
func TestVODVariantAlignment(t *testing.T) {
	a := testmedia.MakeSizedMedia(t, 4, "160x120", "-g", "30")
	b := testmedia.MakeSizedMedia(t, 4, "160x120", "-g", "45")

	v := &VOD{Periods: []VODPeriod{variantPeriod([]*testmedia.Media{a, a}, []int64{0, 3000})}, Variants: true}
	l, err := newVODLayout(v)
	if err != nil {
		t.Fatal(err)
	}
	pl := l.periods[0]
	if pl.segments() != 2 || pl.starts[1][0] != 60 || pl.starts[1][1] != 60 {
		t.Errorf("a frame off: %d segments, cuts %v", pl.segments(), pl.starts)
	}

	v = &VOD{Periods: []VODPeriod{variantPeriod([]*testmedia.Media{a, b}, []int64{0, 0})}, Variants: true}
	srv := serveVOD(t, v)
	for _, name := range []string{"index.m3u8", "t1.m3u8", "t1_p0_1.m4s", "manifest.mpd"} {
		code, body, _ := vodGet(t, srv.URL+"/vod/"+name)
		if code != http.StatusInternalServerError || !strings.Contains(string(body), "video track 1 has no keyframe") {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if _, err := v.WriteFiles(context.Background(), t.TempDir(), VODHLS); err == nil || !strings.Contains(err.Error(), "no keyframe within") {
		t.Errorf("WriteFiles: %v", err)
	}
	// Without Variants nothing is aligned and nothing fails.
	v.Variants = false
	if _, err := newVODLayout(v); err != nil {
		t.Errorf("without variants: %v", err)
	}
}

// TestVODWriteFilesFormats writes one format at a time, and stops on a
// cancelled context.
func TestVODWriteFilesFormats(t *testing.T) {
	v, _ := twoPeriodVOD(t)
	dir := t.TempDir()
	names, err := v.WriteFiles(context.Background(), dir, VODDASH)
	if err != nil || names[0] != "manifest.mpd" {
		t.Fatalf("%v %v", names, err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".m3u8") {
			t.Errorf("DASH only wrote %s", n)
		}
	}
	hls := t.TempDir()
	if names, err = v.WriteFiles(context.Background(), hls, VODHLS); err != nil || names[0] != "index.m3u8" || names[1] != "t0.m3u8" {
		t.Fatalf("%v %v", names, err)
	}
	if _, err := os.Stat(filepath.Join(hls, "manifest.mpd")); !os.IsNotExist(err) {
		t.Errorf("HLS only wrote the MPD: %v", err)
	}
	// Recordings keep their URIs: every file a playlist names exists.
	for _, n := range names {
		if !strings.HasSuffix(n, ".m3u8") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(hls, n))
		for _, m := range uriRe.FindAllStringSubmatch(string(b), -1) {
			uri := m[0]
			if m[1] != "" {
				uri = m[1]
			}
			if _, err := os.Stat(filepath.Join(hls, uri)); err != nil {
				t.Errorf("%s names %s: %v", n, uri, err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.WriteFiles(ctx, t.TempDir(), VODHLS); err != context.Canceled {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := v.WriteFiles(context.Background(), t.TempDir(), 0); err == nil {
		t.Error("no format: no error")
	}
}
