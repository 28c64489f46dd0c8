package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// Live transcoding ladders, seen from outside: a publisher asks for a ladder
// (?ladder=NAME) or the API starts one, and players get the renditions in
// the multivariant playlist and the MPD.
//
// The machine these tests run on may have two cores, so the test ladder is
// small: the source passed through plus 640x360, 480x270 and 320x180 at the
// x264 preset ultrafast, from a 1280x720 publisher with a 2 s GOP.

// ladderSegment is the segment duration of ladderConfig: the publisher's GOP
// (-g 60 at 30 fps) and the ladder's gop.
const ladderSegment = 2 * time.Second

// ladderConfig is the servers' configuration with the test3 ladder; extra
// is appended (it may hold a transcoder: section).
func ladderConfig(extra string) string {
	return `
log:
  level: debug
hub:
  grace_period: 5s
packager:
  segment_duration: 2s
  part_duration: 200ms
  playlist_segments: 6
  linger: 60s
ladders:
  - name: test3
    rungs:
      - name: source
        passthrough: true
      - name: 360p
        video: {codec: h264, width: 640, height: 360, bitrate: 800k, preset: ultrafast, gop: 2s}
        audio: {codec: aac, bitrate: 96k}
      - name: 270p
        video: {codec: h264, width: 480, height: 270, bitrate: 500k, preset: ultrafast, gop: 2s}
        audio: {codec: aac, bitrate: 96k}
      - name: 180p
        video: {codec: h264, width: 320, height: 180, bitrate: 300k, preset: ultrafast, gop: 2s}
        audio: {codec: aac, bitrate: 96k}
` + extra
}

// ladderResolutions are the variants of a test3 stream, best first.
var ladderResolutions = []string{"1280x720", "640x360", "480x270", "320x180"}

// publishLadderSource publishes 1280x720 test media at 30 fps with a 2 s
// GOP to name; query ("ladder=test3") is appended to the URL when set.
func publishLadderSource(t *testing.T, ctx context.Context, s *server, name, query string, dur time.Duration) *proc {
	t.Helper()
	u := s.RTMPURL(name)
	if query != "" {
		u += "?" + query
	}
	return ffmpegPublish(t, ctx, u, pubOptions{Size: "1280x720", Duration: dur, Extra: []string{"-g", "60"}})
}

// ---------------------------------------------------------------------------
// Multivariant playlists

type hlsVariant struct {
	URI        string // resolved
	Resolution string
	Codecs     string
	Bandwidth  int
	Audio      string
}

type hlsRendition struct {
	Type    string
	GroupID string
	URI     string // resolved; "" when the rendition has none
}

type multivariant struct {
	Raw      string
	Variants []hlsVariant
	Media    []hlsRendition
}

// Resolutions lists the variants' RESOLUTION attributes in order.
func (m *multivariant) Resolutions() []string {
	var out []string
	for _, v := range m.Variants {
		out = append(out, v.Resolution)
	}
	return out
}

// Variant returns the variant of one resolution.
func (m *multivariant) Variant(res string) (hlsVariant, bool) {
	for _, v := range m.Variants {
		if v.Resolution == res {
			return v, true
		}
	}
	return hlsVariant{}, false
}

// AudioURIs returns the media playlists of the EXT-X-MEDIA audio renditions.
func (m *multivariant) AudioURIs() []string {
	var out []string
	for _, r := range m.Media {
		if r.Type == "AUDIO" && r.URI != "" && !slices.Contains(out, r.URI) {
			out = append(out, r.URI)
		}
	}
	return out
}

func parseMultivariant(base, body string) (*multivariant, error) {
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	resolve := func(ref string) (string, error) {
		u, err := b.Parse(ref)
		if err != nil {
			return "", err
		}
		return u.String(), nil
	}
	m := &multivariant{Raw: body}
	lines := strings.Split(body, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			a := attrs(strings.TrimPrefix(line, "#EXT-X-STREAM-INF:"))
			v := hlsVariant{Resolution: a["RESOLUTION"], Codecs: a["CODECS"], Audio: a["AUDIO"]}
			v.Bandwidth, _ = strconv.Atoi(a["BANDWIDTH"])
			for i+1 < len(lines) {
				i++
				next := strings.TrimSpace(lines[i])
				if next != "" && !strings.HasPrefix(next, "#") {
					if v.URI, err = resolve(next); err != nil {
						return nil, err
					}
					break
				}
			}
			if v.URI == "" {
				return nil, fmt.Errorf("EXT-X-STREAM-INF without a URI:\n%s", body)
			}
			m.Variants = append(m.Variants, v)
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			a := attrs(strings.TrimPrefix(line, "#EXT-X-MEDIA:"))
			r := hlsRendition{Type: a["TYPE"], GroupID: a["GROUP-ID"]}
			if a["URI"] != "" {
				if r.URI, err = resolve(a["URI"]); err != nil {
					return nil, err
				}
			}
			m.Media = append(m.Media, r)
		}
	}
	return m, nil
}

// fetchMultivariant GETs and parses a stream's multivariant playlist.
func fetchMultivariant(ctx context.Context, s *server, name string) (*multivariant, error) {
	code, body, err := tryGet(ctx, s.HLSURL(name))
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %.300s", s.HLSURL(name), code, body)
	}
	return parseMultivariant(s.HLSURL(name), body)
}

// waitRenditions waits until name's multivariant playlist lists exactly the
// variants of want (resolutions, in order) and every variant's media
// playlist holds at least minSegments complete segments.
func waitRenditions(t *testing.T, s *server, name string, want []string, minSegments int, timeout time.Duration) *multivariant {
	t.Helper()
	var mv *multivariant
	last := ""
	deadline := time.Now().Add(timeout)
	for {
		ok := func() bool {
			m, err := fetchMultivariant(context.Background(), s, name)
			if err != nil {
				last = err.Error()
				return false
			}
			mv = m
			last = "multivariant:\n" + m.Raw
			if !slices.Equal(m.Resolutions(), want) {
				return false
			}
			for _, v := range m.Variants {
				pl, err := fetchMediaPlaylist(context.Background(), v.URI)
				if err != nil {
					last = err.Error()
					return false
				}
				if len(pl.Segments) < minSegments {
					last = fmt.Sprintf("%s has %d segments, want %d:\n%s", v.URI, len(pl.Segments), minSegments, pl.Raw)
					return false
				}
			}
			return true
		}()
		if ok {
			return mv
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the multivariant playlist did not list %v with %d segments each within %v; last: %s", name, want, minSegments, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Media playlists: program date-time per segment

type pdtSegment struct {
	MSN      int
	PDT      string // the EXT-X-PROGRAM-DATE-TIME before it, "" if none
	Duration string // EXTINF's duration as written
	URI      string
}

// segmentsByMSN maps each complete segment of a media playlist to its
// program date-time and EXTINF duration.
func segmentsByMSN(body string) (segs map[int]pdtSegment, mapURI string) {
	segs = map[int]pdtSegment{}
	msn := 0
	var cur pdtSegment
	haveInf := false
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			tag, val, _ := strings.Cut(line, ":")
			switch tag {
			case "#EXT-X-MEDIA-SEQUENCE":
				msn, _ = strconv.Atoi(val)
			case "#EXT-X-MAP":
				mapURI = attrs(val)["URI"]
			case "#EXT-X-PROGRAM-DATE-TIME":
				cur.PDT = val
			case "#EXTINF":
				cur.Duration, _, _ = strings.Cut(val, ",")
				haveInf = true
			}
			continue
		}
		if haveInf {
			cur.MSN, cur.URI = msn, line
			segs[msn] = cur
		}
		msn++
		cur, haveInf = pdtSegment{}, false
	}
	return segs, mapURI
}

// ---------------------------------------------------------------------------
// ISO BMFF: the start of a fragment (tfdt) and the track timescale (mdhd)

type mp4Box struct {
	Type    string
	Payload []byte
}

// mp4Boxes splits b into its boxes.
func mp4Boxes(b []byte) ([]mp4Box, error) {
	var out []mp4Box
	for len(b) > 0 {
		if len(b) < 8 {
			return out, fmt.Errorf("%d stray bytes after the last box", len(b))
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return out, fmt.Errorf("box %q: truncated large size", typ)
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return out, fmt.Errorf("box %q: size %d, %d bytes left", typ, size, len(b))
		}
		out = append(out, mp4Box{Type: typ, Payload: b[hdr:size]})
		b = b[size:]
	}
	return out, nil
}

// mp4Find returns the payload of the first box at path ("moof", "traf",
// "tfdt") in b.
func mp4Find(b []byte, path ...string) ([]byte, error) {
	boxes, err := mp4Boxes(b)
	if err != nil && len(boxes) == 0 {
		return nil, err
	}
	for _, box := range boxes {
		if box.Type != path[0] {
			continue
		}
		if len(path) == 1 {
			return box.Payload, nil
		}
		return mp4Find(box.Payload, path[1:]...)
	}
	return nil, fmt.Errorf("no %s box", path[0])
}

// fragmentStart returns the baseMediaDecodeTime of the first fragment of a
// media segment (moof/traf/tfdt).
func fragmentStart(seg []byte) (uint64, error) {
	p, err := mp4Find(seg, "moof", "traf", "tfdt")
	if err != nil {
		return 0, err
	}
	if len(p) < 4 {
		return 0, errors.New("tfdt: truncated")
	}
	if p[0] == 1 {
		if len(p) < 12 {
			return 0, errors.New("tfdt v1: truncated")
		}
		return binary.BigEndian.Uint64(p[4:]), nil
	}
	if len(p) < 8 {
		return 0, errors.New("tfdt v0: truncated")
	}
	return uint64(binary.BigEndian.Uint32(p[4:])), nil
}

// trackTimescale returns the timescale of the first track of an init
// segment (moov/trak/mdia/mdhd).
func trackTimescale(init []byte) (uint64, error) {
	p, err := mp4Find(init, "moov", "trak", "mdia", "mdhd")
	if err != nil {
		return 0, err
	}
	// version+flags, then creation and modification times (4 or 8 bytes
	// each), then the timescale.
	off := 12
	if len(p) > 0 && p[0] == 1 {
		off = 20
	}
	if len(p) < off+4 {
		return 0, errors.New("mdhd: truncated")
	}
	return uint64(binary.BigEndian.Uint32(p[off:])), nil
}

// fetchOK GETs u and fails the test on anything but 200.
func fetchOK(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", u, resp.StatusCode, b)
	}
	return b
}

// ---------------------------------------------------------------------------
// DASH

type mpdDoc struct {
	Type    string      `xml:"type,attr"`
	Periods []mpdPeriod `xml:"Period"`
}

type mpdPeriod struct {
	ID             string             `xml:"id,attr"`
	AdaptationSets []mpdAdaptationSet `xml:"AdaptationSet"`
}

type mpdAdaptationSet struct {
	ID              string              `xml:"id,attr"`
	ContentType     string              `xml:"contentType,attr"`
	MimeType        string              `xml:"mimeType,attr"`
	Representations []mpdRepresentation `xml:"Representation"`
}

func (a mpdAdaptationSet) kind() string {
	if a.ContentType != "" {
		return a.ContentType
	}
	k, _, _ := strings.Cut(a.MimeType, "/")
	return k
}

type mpdRepresentation struct {
	ID        string `xml:"id,attr"`
	Codecs    string `xml:"codecs,attr"`
	Bandwidth int    `xml:"bandwidth,attr"`
	Width     int    `xml:"width,attr"`
	Height    int    `xml:"height,attr"`
	Template  struct {
		Timescale   uint64 `xml:"timescale,attr"`
		PTO         uint64 `xml:"presentationTimeOffset,attr"`
		StartNumber int    `xml:"startNumber,attr"`
		Media       string `xml:"media,attr"`
		S           []struct {
			T *uint64 `xml:"t,attr"`
			D uint64  `xml:"d,attr"`
			R int     `xml:"r,attr"`
		} `xml:"SegmentTimeline>S"`
	} `xml:"SegmentTemplate"`
}

// segmentTimes maps each segment number of the representation to its start
// time in seconds, as a rational (t, timescale) kept exact.
func (r mpdRepresentation) segmentTimes() map[int][2]uint64 {
	out := map[int][2]uint64{}
	n := r.Template.StartNumber
	var t uint64
	for _, s := range r.Template.S {
		if s.T != nil {
			t = *s.T
		}
		for i := 0; i <= s.R; i++ {
			out[n] = [2]uint64{t - r.Template.PTO, r.Template.Timescale}
			n++
			t += s.D
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The ladder API

// apiLadder is the ladder of a stream as GET /api/v1/streams/{name}/ladder
// describes it.
type apiLadder struct {
	Source    string   `json:"source"`
	Template  string   `json:"template"`
	State     string   `json:"state"`
	Restarts  int      `json:"restarts"`
	LastError string   `json:"last_error"`
	Rungs     []string `json:"rungs"`
	PID       int      `json:"pid"`
	Progress  struct {
		Frame int64   `json:"frame"`
		FPS   float64 `json:"fps"`
		Speed float64 `json:"speed"`
	} `json:"progress"`
}

// ladder returns the ladder of name; ok is false on 404.
func (s *server) ladder(t *testing.T, name string) (apiLadder, bool) {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/streams/"+name+"/ladder", apiToken)
	if code == http.StatusNotFound {
		return apiLadder{}, false
	}
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/streams/%s/ladder: %d %.300s", name, code, b)
	}
	var li apiLadder
	if err := json.Unmarshal(b, &li); err != nil {
		t.Fatalf("GET /api/v1/streams/%s/ladder: %v: %.300s", name, err, b)
	}
	return li, true
}

// waitLadderRunning waits until name's ladder runs a child accepted by
// cond (nil: any), and returns it.
func waitLadderRunning(t *testing.T, s *server, name string, timeout time.Duration, cond func(apiLadder) bool) apiLadder {
	t.Helper()
	var li apiLadder
	waitFor(t, timeout, "a running ladder on "+name, func() bool {
		l, ok := s.ladder(t, name)
		li = l
		return ok && l.State == "running" && l.PID > 0 && (cond == nil || cond(l))
	})
	return li
}

// ---------------------------------------------------------------------------
// Processes

// procState returns the state letter of pid (R, S, Z...) and its parent
// and start time, from /proc/PID/stat; ok is false when there is no such
// process.
func procState(pid int) (state byte, ppid int, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", false
	}
	// "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	// Field 22 of stat (starttime) is f[19] here: f[0] is field 3.
	return f[0][0], ppid, f[19], true
}

// procComm returns the command name of pid.
func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// ---------------------------------------------------------------------------
// Tests

// TestLadderRenditions publishes with ?ladder=test3 and checks what players
// get: every rung in the multivariant playlist at its size in H.264, audio
// that decodes, segments that start at the same time in every rendition,
// and one video AdaptationSet holding every rung in the MPD.
func TestLadderRenditions(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: ladderConfig("")})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/ladder-r"
	pub := publishLadderSource(t, ctx, s, name, "ladder=test3", 2*time.Minute)
	mv := waitRenditions(t, s, name, ladderResolutions, 3, 60*time.Second)
	t.Logf("multivariant playlist:\n%s", mv.Raw)
	if li, ok := s.ladder(t, name); !ok || li.Template != "test3" || len(li.Rungs) != 4 {
		t.Errorf("ladder API: %+v (found %v), want template test3 with 4 rungs", li, ok)
	}

	t.Run("Video", func(t *testing.T) {
		for _, v := range mv.Variants {
			var w, h int
			fmt.Sscanf(v.Resolution, "%dx%d", &w, &h)
			if !strings.HasPrefix(v.Codecs, "avc1.") || !strings.Contains(v.Codecs, "mp4a.40.2") {
				t.Errorf("%s: CODECS=%q, want avc1 and mp4a.40.2", v.Resolution, v.Codecs)
			}
			if v.Audio == "" {
				t.Errorf("%s: the variant names no AUDIO group", v.Resolution)
			}
			p := ffprobe(t, v.URI)
			vs := p.ByType("video")
			if len(vs) != 1 {
				t.Errorf("%s (%s): ffprobe sees %d video streams, want 1: %+v", v.Resolution, v.URI, len(vs), p.Streams)
				continue
			}
			t.Logf("%s: ffprobe sees %s %s %dx%d", v.URI, vs[0].CodecName, vs[0].Profile, vs[0].Width, vs[0].Height)
			if vs[0].CodecName != "h264" || vs[0].Width != w || vs[0].Height != h {
				t.Errorf("%s: ffprobe sees %s %dx%d, want h264 %dx%d", v.URI, vs[0].CodecName, vs[0].Width, vs[0].Height, w, h)
			}
		}
	})

	t.Run("Audio", func(t *testing.T) {
		uris := mv.AudioURIs()
		if len(uris) == 0 {
			t.Fatalf("the multivariant playlist lists no audio rendition:\n%s", mv.Raw)
		}
		for _, u := range uris {
			p := ffprobe(t, u)
			if as := p.ByType("audio"); len(as) != 1 || as[0].CodecName != "aac" || as[0].SampleRate != "48000" {
				t.Errorf("%s: ffprobe sees audio %+v, want one AAC stream at 48 kHz", u, as)
			}
			const dur = 4 * time.Second
			res := ffmpegDecode(t, u, dur)
			t.Logf("%s: decoded %d audio frames (%.2f s)", u, res.AudioFrames, res.AudioSeconds)
			if res.Err != nil {
				t.Errorf("%s: ffmpeg failed: %v\n%s", u, res.Err, testutil.Tail(res.Stderr, 30))
			}
			if lines := errorLines(res.Stderr); len(lines) > 0 {
				t.Errorf("%s: ffmpeg reported %d error lines:\n%s", u, len(lines), testutil.Tail(strings.Join(lines, "\n"), 30))
			}
			if min := dur.Seconds() * 2 / 3; res.AudioSeconds < min {
				t.Errorf("%s: decoded %.2f s of audio in %v, want >= %.1f s", u, res.AudioSeconds, dur, min)
			}
		}
	})

	t.Run("AlignedHLS", func(t *testing.T) {
		// Fetch every rendition's video playlist, then compare the segments
		// they all list.
		type rendition struct {
			v      hlsVariant
			segs   map[int]pdtSegment
			mapURI string
		}
		var rs []rendition
		for _, v := range mv.Variants {
			code, body := httpGet(t, v.URI)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %.300s", v.URI, code, body)
			}
			segs, mapURI := segmentsByMSN(body)
			rs = append(rs, rendition{v, segs, mapURI})
		}
		var common []int
		for msn := range rs[0].segs {
			all := true
			for _, r := range rs[1:] {
				if _, ok := r.segs[msn]; !ok {
					all = false
				}
			}
			if all {
				common = append(common, msn)
			}
		}
		slices.Sort(common)
		if len(common) < 2 {
			t.Fatalf("the renditions' playlists have %d segments in common (%v), want >= 2", len(common), common)
		}
		for _, msn := range common {
			ref := rs[0].segs[msn]
			if ref.PDT == "" {
				t.Errorf("%s: segment %d has no EXT-X-PROGRAM-DATE-TIME", rs[0].v.Resolution, msn)
			}
			for _, r := range rs[1:] {
				got := r.segs[msn]
				if got.PDT != ref.PDT || got.Duration != ref.Duration {
					t.Errorf("segment %d: %s starts at %s and lasts %s, %s starts at %s and lasts %s",
						msn, rs[0].v.Resolution, ref.PDT, ref.Duration, r.v.Resolution, got.PDT, got.Duration)
				}
			}
		}
		t.Logf("segments %v start at the same program date-time with the same duration in %d renditions", common, len(rs))

		// The fragments' decode times (tfdt) of the newest common segment.
		msn := common[len(common)-1]
		type start struct {
			res       string
			tfdt, ts  uint64
			segmentID string
		}
		var starts []start
		for _, r := range rs {
			seg := r.segs[msn]
			if r.mapURI == "" {
				t.Fatalf("%s: no EXT-X-MAP", r.v.URI)
			}
			ts, err := trackTimescale(fetchOK(t, resolve(t, r.v.URI, r.mapURI)))
			if err != nil || ts == 0 {
				t.Fatalf("%s init segment: timescale %d: %v", r.v.Resolution, ts, err)
			}
			tfdt, err := fragmentStart(fetchOK(t, resolve(t, r.v.URI, seg.URI)))
			if err != nil {
				t.Fatalf("%s segment %d (%s): %v", r.v.Resolution, msn, seg.URI, err)
			}
			starts = append(starts, start{r.v.Resolution, tfdt, ts, seg.URI})
		}
		for _, st := range starts[1:] {
			if st.tfdt*starts[0].ts != starts[0].tfdt*st.ts {
				t.Errorf("segment %d starts at decode time %d/%d in %s (%s) but %d/%d in %s (%s)",
					msn, st.tfdt, st.ts, st.res, st.segmentID, starts[0].tfdt, starts[0].ts, starts[0].res, starts[0].segmentID)
			}
		}
		t.Logf("segment %d: tfdt %v", msn, starts)
	})

	t.Run("DASH", func(t *testing.T) {
		code, body := httpGet(t, s.DASHURL(name))
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", s.DASHURL(name), code, body)
		}
		var mpd mpdDoc
		if err := xml.Unmarshal([]byte(body), &mpd); err != nil {
			t.Fatalf("MPD does not parse: %v\n%s", err, body)
		}
		if len(mpd.Periods) == 0 {
			t.Fatalf("MPD has no Period:\n%s", body)
		}
		period := mpd.Periods[len(mpd.Periods)-1]
		var video []mpdAdaptationSet
		for _, as := range period.AdaptationSets {
			if as.kind() == "video" {
				video = append(video, as)
			}
		}
		if len(video) != 1 {
			t.Fatalf("MPD has %d video AdaptationSets, want 1:\n%s", len(video), body)
		}
		var sizes []string
		for _, r := range video[0].Representations {
			sizes = append(sizes, fmt.Sprintf("%dx%d", r.Width, r.Height))
			if !strings.HasPrefix(r.Codecs, "avc1.") {
				t.Errorf("Representation %s: codecs %q, want avc1", r.ID, r.Codecs)
			}
		}
		slices.Sort(sizes)
		want := slices.Clone(ladderResolutions)
		slices.Sort(want)
		if !slices.Equal(sizes, want) {
			t.Errorf("the video AdaptationSet's Representations are %v, want one per rung %v:\n%s", sizes, want, body)
		}
		// A player switches between Representations of one AdaptationSet
		// at segment boundaries: segment N must start at the same time in
		// each.
		reps := video[0].Representations
		ref := reps[0].segmentTimes()
		compared := 0
		for n, t0 := range ref {
			all := true
			for _, r := range reps[1:] {
				t1, ok := r.segmentTimes()[n]
				if !ok {
					all = false
					continue
				}
				if t0[0]*t1[1] != t1[0]*t0[1] {
					t.Errorf("DASH segment %d starts at %d/%d in %s but %d/%d in %s", n, t0[0], t0[1], reps[0].ID, t1[0], t1[1], r.ID)
				}
			}
			if all {
				compared++
			}
		}
		if compared < 2 {
			t.Errorf("the Representations have %d segment numbers in common, want >= 2:\n%s", compared, body)
		}
	})

	if !pub.Running() {
		t.Errorf("the publisher exited: %v\n%s", pub.err, testutil.Tail(pub.Stderr.String(), 20))
	}
}

// TestLadderBrowser plays a ladder stream in Chromium with hls.js and with
// dash.js, then forces the smallest rendition: playback must go on, in it.
func TestLadderBrowser(t *testing.T) {
	t.Parallel()
	dir := browserDir(t)
	s := startServer(t, serverOptions{Config: ladderConfig("")})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const name = "live/ladder-browser"
	publishLadderSource(t, ctx, s, name, "ladder=test3", 3*time.Minute)
	waitRenditions(t, s, name, ladderResolutions, 2, 60*time.Second)

	for _, tc := range []struct{ player, url string }{
		{"hls", s.HLSURL(name)},
		{"dash", s.DASHURL(name)},
	} {
		t.Run(tc.player, func(t *testing.T) {
			res := runPlayerWith(t, ctx, dir, tc.player, tc.url, 6, 45, nil,
				playerOptions{Args: []string{"--switch"}, Width: 320, Height: 180})
			var heights []int
			for _, l := range res.Levels {
				heights = append(heights, l.Height)
			}
			slices.Sort(heights)
			if !slices.Equal(heights, []int{180, 270, 360, 720}) {
				t.Errorf("%s offered video renditions of heights %v, want [180 270 360 720]", tc.player, heights)
			}
			if res.SwitchedTo == nil || res.SwitchedTo.Height != 180 {
				t.Errorf("%s: switched to %+v, want the 180 px rendition", tc.player, res.SwitchedTo)
			}
			if !res.OK {
				t.Logf("%s events: %v\nfailed requests: %v", tc.player, res.Events, res.FailedRequests)
			}
		})
	}
}

// TestLadderChildCrash kills the ladder's ffmpeg child: the ladder comes
// back with a new child and its renditions advance again, while the source
// plays on throughout.
func TestLadderChildCrash(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: ladderConfig("")})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/ladder-crash"
	pub := publishLadderSource(t, ctx, s, name, "ladder=test3", 2*time.Minute)
	mv := waitRenditions(t, s, name, ladderResolutions, 2, 60*time.Second)
	li := waitLadderRunning(t, s, name, 30*time.Second, nil)
	source, _ := mv.Variant("1280x720")
	rung, _ := mv.Variant("320x180")

	// Watch the source's playlist for the whole test.
	type watch struct {
		maxGap  time.Duration
		lastMSN int
		errs    []string
		disc    int
	}
	var (
		mu      sync.Mutex
		w       = watch{lastMSN: -1}
		stopped = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		lastAdvance := time.Now()
		for {
			select {
			case <-stopped:
				return
			case <-time.After(200 * time.Millisecond):
			}
			pl, err := fetchMediaPlaylist(ctx, source.URI)
			now := time.Now()
			mu.Lock()
			if err != nil {
				if len(w.errs) < 10 {
					w.errs = append(w.errs, now.Format("15:04:05.000")+" "+err.Error())
				}
			} else {
				if pl.LastMSN() > w.lastMSN {
					w.lastMSN = pl.LastMSN()
					lastAdvance = now
				}
				w.disc = max(w.disc, pl.Discontinuity+pl.DiscontinuitySequence)
			}
			if gap := now.Sub(lastAdvance); gap > w.maxGap {
				w.maxGap = gap
			}
			mu.Unlock()
		}
	}()

	t.Logf("killing the ladder's ffmpeg child, pid %d (state %s, restarts %d)", li.PID, li.State, li.Restarts)
	if comm := procComm(li.PID); comm != "ffmpeg" {
		t.Fatalf("pid %d from the ladder API is %q, not ffmpeg", li.PID, comm)
	}
	if err := syscall.Kill(li.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", li.PID, err)
	}
	killed := time.Now()
	back := waitLadderRunning(t, s, name, 60*time.Second, func(l apiLadder) bool {
		return l.PID != li.PID && l.Restarts >= 1
	})
	t.Logf("the ladder is back %v after the kill: pid %d, restarts %d, last error %q",
		time.Since(killed).Round(time.Millisecond), back.PID, back.Restarts, back.LastError)
	if back.Template != "test3" || len(back.Rungs) != 4 {
		t.Errorf("after the restart the ladder is %+v, want test3 with 4 rungs", back)
	}

	// Two more complete segments in the smallest rung: media from the new
	// child.
	pl, err := fetchMediaPlaylist(ctx, rung.URI)
	if err != nil {
		t.Fatal(err)
	}
	after := waitAdvance(t, rung.URI, (pl.NextMSN()+2)*1000-1, 60*time.Second)
	t.Logf("the 320x180 rung advanced from segment %d to %d after the restart", pl.LastMSN(), after.LastMSN())
	// Its newest media decodes.
	if res := ffmpegDecode(t, rung.URI, 3*time.Second, "-live_start_index", "-2"); res.Err != nil || len(errorLines(res.Stderr)) > 0 || res.VideoFrames == 0 {
		t.Errorf("the 320x180 rung after the restart: decoded %d frames (%s), error %v:\n%s", res.VideoFrames, res.VideoSize, res.Err, testutil.Tail(res.Stderr, 20))
	} else if res.VideoSize != "320x180" {
		t.Errorf("the 320x180 rung decodes at %s after the restart", res.VideoSize)
	}

	// A few more source segments, then stop watching.
	srcPl, err := fetchMediaPlaylist(ctx, source.URI)
	if err != nil {
		t.Fatal(err)
	}
	waitAdvance(t, source.URI, (srcPl.NextMSN()+1)*1000-1, 30*time.Second)
	close(stopped)
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("the source's playlist went at most %v without a new segment", w.maxGap.Round(time.Millisecond))
	// A segment is 2 s; the child's crash must not hold the source up.
	if limit := 4 * ladderSegment; w.maxGap > limit {
		t.Errorf("the source's playlist %s went %v without a new segment around the child's crash, want at most %v", source.URI, w.maxGap.Round(time.Millisecond), limit)
	}
	if len(w.errs) > 0 {
		t.Errorf("the source's playlist failed while the child was down:\n%s", strings.Join(w.errs, "\n"))
	}
	if w.disc > 0 {
		t.Errorf("the source's playlist got a discontinuity from the child's crash")
	}
	if !pub.Running() {
		t.Errorf("the publisher exited: %v\n%s", pub.err, testutil.Tail(pub.Stderr.String(), 20))
	}
}

// TestLadderNoOrphansAfterSIGKILL kills mps itself with SIGKILL: its ladder
// child must not live on.
func TestLadderNoOrphansAfterSIGKILL(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: ladderConfig("")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/ladder-orphan"
	publishLadderSource(t, ctx, s, name, "ladder=test3", time.Minute)
	li := waitLadderRunning(t, s, name, 60*time.Second, nil)
	state, ppid, start, ok := procState(li.PID)
	if !ok {
		t.Fatalf("ladder child pid %d from the API does not exist", li.PID)
	}
	if comm := procComm(li.PID); comm != "ffmpeg" || ppid != s.cmd.Process.Pid {
		t.Fatalf("pid %d is %q with parent %d; want ffmpeg, a child of mps (pid %d)", li.PID, comm, ppid, s.cmd.Process.Pid)
	}
	t.Logf("ladder child pid %d (state %c); killing mps (pid %d) with SIGKILL", li.PID, state, s.cmd.Process.Pid)
	s.kill()
	killed := time.Now()
	var last string
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, pp, st0, ok := procState(li.PID)
		// Gone, a zombie (dead, waiting for init to reap it), or the pid
		// reused by another process.
		if !ok || st == 'Z' || st0 != start {
			t.Logf("the ladder child is gone %v after mps was killed (exists %v, state %q)", time.Since(killed).Round(time.Millisecond), ok, st)
			return
		}
		last = fmt.Sprintf("state %c, parent %d", st, pp)
		if time.Now().After(deadline) {
			// Do not leave it behind.
			_ = syscall.Kill(li.PID, syscall.SIGKILL)
			t.Fatalf("the ladder's ffmpeg child (pid %d) still runs 10 s after mps was killed with SIGKILL (%s)", li.PID, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLadderAPI starts, refuses and stops ladders through the API, and
// refuses a publisher that asks for an unknown ladder.
func TestLadderAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: ladderConfig("")})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/ladder-api"
	ladderPath := "/api/v1/streams/" + name + "/ladder"

	t.Run("Listings", func(t *testing.T) {
		code, b := s.api(t, http.MethodGet, "/api/v1/ladders", apiToken)
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/ladders: %d %.300s", code, b)
		}
		var list []struct {
			Name  string `json:"name"`
			Rungs []struct {
				Name string `json:"name"`
			} `json:"rungs"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatalf("GET /api/v1/ladders: %v: %.500s", err, b)
		}
		found := false
		for _, l := range list {
			if l.Name == "test3" {
				found = true
				if len(l.Rungs) != 4 {
					t.Errorf("test3 has %d rungs in /api/v1/ladders, want 4: %+v", len(l.Rungs), l)
				}
			}
		}
		if !found {
			t.Errorf("/api/v1/ladders does not list test3: %.500s", b)
		}
		code, b = s.api(t, http.MethodGet, "/api/v1/capabilities", apiToken)
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/capabilities: %d %.300s", code, b)
		}
		var caps struct {
			VideoCodecs []string `json:"video_codecs"`
			AudioCodecs []string `json:"audio_codecs"`
		}
		if err := json.Unmarshal(b, &caps); err != nil {
			t.Fatalf("GET /api/v1/capabilities: %v: %.500s", err, b)
		}
		if !slices.Contains(caps.VideoCodecs, "h264") || !slices.Contains(caps.AudioCodecs, "aac") {
			t.Errorf("capabilities: video %v, audio %v; want h264 and aac (this machine's ffmpeg has libx264 and aac):\n%.500s", caps.VideoCodecs, caps.AudioCodecs, b)
		}
	})

	pub := publishLadderSource(t, ctx, s, name, "", 2*time.Minute)
	waitForPlaylist(t, s, name, 2)
	if li, ok := s.ladder(t, name); ok {
		t.Fatalf("a stream published without ?ladder has a ladder: %+v", li)
	}

	// An unknown template, on a stream without a ladder.
	code, b := s.apiBody(t, http.MethodPut, ladderPath, `{"template":"nope"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(b), "nope") {
		t.Errorf("PUT ladder with an unknown template: %d %s; want 400 naming the template", code, b)
	}
	if li, ok := s.ladder(t, name); ok {
		t.Errorf("a refused PUT started a ladder: %+v", li)
	}
	// A stream that is not live.
	if code, b := s.apiBody(t, http.MethodPut, "/api/v1/streams/live/not-live/ladder", `{"template":"test3"}`); code != http.StatusNotFound {
		t.Errorf("PUT ladder on a stream that is not live: %d %s; want 404", code, b)
	}

	// Start it.
	code, b = s.apiBody(t, http.MethodPut, ladderPath, `{"template":"test3"}`)
	if code != http.StatusOK {
		t.Fatalf("PUT %s test3: %d %s", ladderPath, code, b)
	}
	var started apiLadder
	if err := json.Unmarshal(b, &started); err != nil || started.Template != "test3" {
		t.Errorf("PUT ladder answered %s (%v); want the ladder, template test3", b, err)
	}
	mv := waitRenditions(t, s, name, ladderResolutions, 2, 60*time.Second)
	li := waitLadderRunning(t, s, name, 30*time.Second, nil)
	t.Logf("ladder started through the API: pid %d, rungs %v", li.PID, li.Rungs)

	// An unknown template leaves the running ladder alone.
	code, b = s.apiBody(t, http.MethodPut, ladderPath, `{"template":"nope"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(b), "nope") {
		t.Errorf("PUT ladder with an unknown template on a running ladder: %d %s; want 400 naming the template", code, b)
	}
	if now, ok := s.ladder(t, name); !ok || now.Template != "test3" || now.PID != li.PID {
		t.Errorf("after a refused PUT the ladder is %+v (found %v); want test3 still running as pid %d", now, ok, li.PID)
	}

	// Stop it: the renditions end and the multivariant playlist goes back
	// to the source alone.
	code, b = s.api(t, http.MethodDelete, ladderPath, apiToken)
	if code != http.StatusNoContent {
		t.Fatalf("DELETE %s: %d %s", ladderPath, code, b)
	}
	var last *multivariant
	waitFor(t, 30*time.Second, "the multivariant playlist to list the source alone", func() bool {
		m, err := fetchMultivariant(ctx, s, name)
		if err != nil {
			return false
		}
		last = m
		return len(m.Variants) == 1 && m.Variants[0].Resolution == "1280x720"
	})
	t.Logf("multivariant playlist after DELETE:\n%s", last.Raw)
	if li, ok := s.ladder(t, name); ok {
		t.Errorf("after DELETE the stream still has a ladder: %+v", li)
	}
	if code, b := s.api(t, http.MethodDelete, ladderPath, apiToken); code != http.StatusNotFound {
		t.Errorf("a second DELETE %s: %d %s; want 404", ladderPath, code, b)
	}
	// The rendition streams end: the API stops listing them, and their
	// playlists (kept for linger) say so.
	for _, rungName := range li.Rungs {
		if rungName == name {
			continue
		}
		waitFor(t, 30*time.Second, rungName+" to end", func() bool {
			_, ok := s.stream(t, rungName)
			return !ok
		})
	}
	for _, v := range mv.Variants[1:] {
		if pl, err := fetchMediaPlaylist(ctx, v.URI); err == nil && !pl.Endlist {
			t.Errorf("%s still plays after DELETE (no EXT-X-ENDLIST):\n%s", v.URI, pl.Raw)
		}
	}
	waitFor(t, 10*time.Second, "the ladder child to exit", func() bool {
		st, _, _, ok := procState(li.PID)
		return !ok || st == 'Z'
	})
	// The source goes on.
	src, _ := mv.Variant("1280x720")
	if pl, err := fetchMediaPlaylist(ctx, src.URI); err != nil {
		t.Errorf("source playlist after DELETE: %v", err)
	} else {
		waitAdvance(t, src.URI, pl.Position(), 20*time.Second)
	}
	if !pub.Running() {
		t.Errorf("the publisher exited: %v\n%s", pub.err, testutil.Tail(pub.Stderr.String(), 20))
	}

	t.Run("PublisherUnknownLadder", func(t *testing.T) {
		const bad = "live/ladder-nope"
		p := publishLadderSource(t, ctx, s, bad, "ladder=nope", 30*time.Second)
		exited, err := p.Wait(30 * time.Second)
		if !exited {
			t.Fatalf("a publisher asking for ?ladder=nope still runs after 30 s")
		}
		if err == nil {
			t.Errorf("a publisher asking for ?ladder=nope exited 0; want a refusal\n%s", testutil.Tail(p.Stderr.String(), 10))
		}
		t.Logf("ffmpeg exited: %v: %s", err, strings.TrimSpace(testutil.Tail(p.Stderr.String(), 3)))
		line := s.waitLog(t, 10*time.Second, "unknown ladder", "nope")
		t.Logf("mps log: %s", line)
		if _, ok := s.stream(t, bad); ok {
			t.Errorf("%s is live although its publisher was refused", bad)
		}
	})
}

// TestLadderThumbnail fetches /live/NAME/thumbnail.jpg of a stream with a
// ladder and of one without: a JPEG that changes over time.
func TestLadderThumbnail(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: ladderConfig(`
transcoder:
  thumbnails:
    interval: 1s
`)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	publishLadderSource(t, ctx, s, "live/thumb-ladder", "ladder=test3", 2*time.Minute)
	ffmpegPublish(t, ctx, s.RTMPURL("live/thumb-plain"), pubOptions{Duration: 2 * time.Minute})

	// fetch returns the thumbnail's bytes, or nil while there is none.
	fetch := func(t *testing.T, name string) []byte {
		t.Helper()
		resp, err := httpClient.Get(s.URL("/" + name + "/thumbnail.jpg"))
		if err != nil {
			t.Fatalf("GET thumbnail of %s: %v", name, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET thumbnail of %s: %v", name, err)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET thumbnail of %s: %d %.300s", name, resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("thumbnail of %s: Content-Type %q, want image/jpeg", name, ct)
		}
		return b
	}
	check := func(t *testing.T, name string, b []byte) {
		t.Helper()
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("thumbnail of %s (%d bytes) is not a JPEG: %v", name, len(b), err)
		}
		// thumbnails.width defaults to 320; the sources are 16:9.
		if sz := img.Bounds().Size(); sz.X != 320 || sz.Y != 180 {
			t.Errorf("thumbnail of %s is %dx%d, want 320x180", name, sz.X, sz.Y)
		}
	}
	for _, name := range []string{"live/thumb-ladder", "live/thumb-plain"} {
		t.Run(strings.TrimPrefix(name, "live/"), func(t *testing.T) {
			if name == "live/thumb-ladder" {
				// Until its ladder runs, a stream's thumbnails come from
				// its keyframes; then the ladder's child makes them.
				waitRenditions(t, s, name, ladderResolutions, 1, 60*time.Second)
			}
			var cur []byte
			waitFor(t, 60*time.Second, "a thumbnail of "+name, func() bool {
				cur = fetch(t, name)
				return cur != nil
			})
			check(t, name, cur)
			// It changes, and again (with an interval of 1 s).
			for i := 0; i < 2; i++ {
				prev := cur
				waitFor(t, 30*time.Second, "the thumbnail of "+name+" to change", func() bool {
					cur = fetch(t, name)
					return cur != nil && !bytes.Equal(cur, prev)
				})
				check(t, name, cur)
			}
		})
	}
	if li, ok := s.ladder(t, "live/thumb-ladder"); !ok {
		t.Errorf("live/thumb-ladder has no ladder")
	} else {
		t.Logf("live/thumb-ladder: ladder %s, state %s, speed %.2f", li.Template, li.State, li.Progress.Speed)
	}
}

// TestBadTemplateRefused starts mps with a ladder that cannot be right: it
// must exit with an error that names the field.
func TestBadTemplateRefused(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if buildErr != nil {
		t.Fatalf("mps binary not built: %v\n%s", buildErr, buildOut)
	}
	const good = `{codec: h264, width: 640, height: 360, bitrate: 800k}`
	for _, tc := range []struct {
		name  string
		video string
		audio string
		want  []string // all in the output
	}{
		{"UnknownCodec", `{codec: h263, width: 640, height: 360, bitrate: 800k}`, "", []string{"rungs[1].video.codec", "h263"}},
		{"OddWidth", `{codec: h264, width: 641, height: 360, bitrate: 800k}`, "", []string{"rungs[1].video.width", "641"}},
		{"ZeroBitrate", `{codec: h264, width: 640, height: 360, bitrate: 0}`, "", []string{"rungs[1].video.bitrate"}},
		{"UnknownField", `{codec: h264, width: 640, height: 360, bitrate: 800k, bogus: 1}`, "", []string{"bogus"}},
		{"UnknownAudioCodec", good, `{codec: mp3}`, []string{"rungs[1].audio.codec", "mp3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rung := "        video: " + tc.video + "\n"
			if tc.audio != "" {
				rung += "        audio: " + tc.audio + "\n"
			}
			cfg := `
ladders:
  - name: broken
    rungs:
      - name: source
        passthrough: true
      - name: r1
` + rung
			dir := t.TempDir()
			path := filepath.Join(dir, "mps.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, mpsBin, "serve", "--config", path)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"MPS_RTMP_ADDRESS=127.0.0.1:0",
				"MPS_HTTP_ADDRESS=127.0.0.1:0",
				"MPS_API_TOKEN="+apiToken,
			)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("mps serve with a bad ladder still ran after 30 s; want it to refuse the configuration:\n%s\nconfig:\n%s", testutil.Tail(string(out), 20), cfg)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() <= 0 {
				t.Fatalf("mps serve exited with %v; want a non-zero exit status:\n%s", err, testutil.Tail(string(out), 20))
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("mps serve's output does not name %q:\n%s", w, testutil.Tail(string(out), 20))
				}
			}
			t.Logf("exit %d: %s", ee.ExitCode(), strings.TrimSpace(testutil.Tail(string(out), 3)))
		})
	}
}
