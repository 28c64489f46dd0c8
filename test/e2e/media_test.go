package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// ---------------------------------------------------------------------------
// HLS playlists

// attrs parses an attribute list such as `URI="a.mp4",BYTERANGE="10@0"`.
func attrs(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:1+end], s[2+end:]
			}
			s = strings.TrimPrefix(s, ",")
		} else if comma := strings.IndexByte(s, ','); comma >= 0 {
			val, s = s[:comma], s[comma+1:]
		} else {
			val, s = s, ""
		}
		out[key] = val
	}
	return out
}

type hlsPart struct {
	MSN         int
	Index       int
	Duration    float64
	URI         string
	Independent bool
}

type hlsSegment struct {
	MSN           int
	Duration      float64
	URI           string
	Discontinuity bool
	Parts         []hlsPart
}

// mediaPlaylist is what a player reads from an HLS media playlist.
type mediaPlaylist struct {
	Raw                   string
	Version               int
	TargetDuration        int
	MediaSequence         int
	DiscontinuitySequence int
	HasIndependent        bool
	ServerControl         map[string]string
	PartInf               map[string]string
	Map                   map[string]string
	PreloadHint           map[string]string
	Segments              []hlsSegment
	// TrailingParts are the parts of the segment being built (MSN = last
	// segment's MSN + 1).
	TrailingParts []hlsPart
	Endlist       bool
	Discontinuity int // EXT-X-DISCONTINUITY tags seen
	Tags          map[string]int
}

func parseMediaPlaylist(body string) *mediaPlaylist {
	pl := &mediaPlaylist{Raw: body, Tags: map[string]int{}}
	var parts []hlsPart
	var dur float64
	disc := false
	haveInf := false
	msn := -1
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			tag, val, _ := strings.Cut(line, ":")
			pl.Tags[tag]++
			switch tag {
			case "#EXT-X-VERSION":
				pl.Version, _ = strconv.Atoi(val)
			case "#EXT-X-TARGETDURATION":
				pl.TargetDuration, _ = strconv.Atoi(val)
			case "#EXT-X-MEDIA-SEQUENCE":
				pl.MediaSequence, _ = strconv.Atoi(val)
			case "#EXT-X-DISCONTINUITY-SEQUENCE":
				pl.DiscontinuitySequence, _ = strconv.Atoi(val)
			case "#EXT-X-INDEPENDENT-SEGMENTS":
				pl.HasIndependent = true
			case "#EXT-X-SERVER-CONTROL":
				pl.ServerControl = attrs(val)
			case "#EXT-X-PART-INF":
				pl.PartInf = attrs(val)
			case "#EXT-X-MAP":
				pl.Map = attrs(val)
			case "#EXT-X-PRELOAD-HINT":
				pl.PreloadHint = attrs(val)
			case "#EXT-X-ENDLIST":
				pl.Endlist = true
			case "#EXT-X-DISCONTINUITY":
				disc = true
				pl.Discontinuity++
			case "#EXTINF":
				d, _, _ := strings.Cut(val, ",")
				dur, _ = strconv.ParseFloat(d, 64)
				haveInf = true
			case "#EXT-X-PART":
				if msn < 0 {
					msn = pl.MediaSequence
				}
				a := attrs(val)
				d, _ := strconv.ParseFloat(a["DURATION"], 64)
				parts = append(parts, hlsPart{MSN: msn, Index: len(parts), Duration: d, URI: a["URI"], Independent: a["INDEPENDENT"] == "YES"})
			}
			continue
		}
		// A URI line ends a segment.
		if msn < 0 {
			msn = pl.MediaSequence
		}
		if haveInf {
			pl.Segments = append(pl.Segments, hlsSegment{MSN: msn, Duration: dur, URI: line, Discontinuity: disc, Parts: parts})
		}
		parts, disc, haveInf, dur = nil, false, false, 0
		msn++
	}
	if msn < 0 {
		msn = pl.MediaSequence
	}
	for i := range parts {
		parts[i].MSN = msn
	}
	pl.TrailingParts = parts
	return pl
}

// NextMSN is the media sequence number of the segment being built.
func (pl *mediaPlaylist) NextMSN() int {
	if len(pl.Segments) == 0 {
		return pl.MediaSequence
	}
	return pl.Segments[len(pl.Segments)-1].MSN + 1
}

// LastMSN is the MSN of the last complete segment, -1 if none.
func (pl *mediaPlaylist) LastMSN() int {
	if len(pl.Segments) == 0 {
		return -1
	}
	return pl.Segments[len(pl.Segments)-1].MSN
}

// HasPart reports whether the playlist lists part idx of segment msn.
func (pl *mediaPlaylist) HasPart(msn, idx int) bool {
	for _, s := range pl.Segments {
		if s.MSN == msn {
			return idx < len(s.Parts)
		}
	}
	if msn == pl.NextMSN() {
		return idx < len(pl.TrailingParts)
	}
	return false
}

// Position is a comparable "how far the playlist has got": segments times
// 1000 plus trailing parts.
func (pl *mediaPlaylist) Position() int {
	return pl.NextMSN()*1000 + len(pl.TrailingParts)
}

// variantURIs returns the media playlist URIs of a multivariant playlist,
// resolved against base: EXT-X-STREAM-INF variants first, then EXT-X-MEDIA
// renditions. A media playlist returns itself.
func variantURIs(base, body string) ([]string, error) {
	if strings.Contains(body, "#EXTINF") || strings.Contains(body, "#EXT-X-TARGETDURATION") {
		return []string{base}, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	var variants, media []string
	lines := strings.Split(body, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF"):
			for i+1 < len(lines) {
				i++
				next := strings.TrimSpace(lines[i])
				if next != "" && !strings.HasPrefix(next, "#") {
					u, err := b.Parse(next)
					if err != nil {
						return nil, err
					}
					variants = append(variants, u.String())
					break
				}
			}
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			if uri := attrs(strings.TrimPrefix(line, "#EXT-X-MEDIA:"))["URI"]; uri != "" {
				u, err := b.Parse(uri)
				if err != nil {
					return nil, err
				}
				media = append(media, u.String())
			}
		}
	}
	out := append(variants, media...)
	if len(out) == 0 {
		return nil, fmt.Errorf("multivariant playlist %s lists no media playlist:\n%s", base, body)
	}
	return out, nil
}

func firstMediaPlaylistURL(base, body string) (string, error) {
	u, err := variantURIs(base, body)
	if err != nil {
		return "", err
	}
	return u[0], nil
}

// fetchMediaPlaylist GETs and parses a media playlist; a non-200 answer is
// returned as an error.
func fetchMediaPlaylist(ctx context.Context, u string) (*mediaPlaylist, error) {
	code, body, err := tryGet(ctx, u)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET %s: %d %.300s", u, code, body)
	}
	return parseMediaPlaylist(body), nil
}

// waitAdvance waits until the media playlist at u has moved past from
// (a Position value), and returns the new playlist.
func waitAdvance(t *testing.T, u string, from int, timeout time.Duration) *mediaPlaylist {
	t.Helper()
	var pl *mediaPlaylist
	var lastErr error
	deadline := time.Now().Add(timeout)
	for {
		p, err := fetchMediaPlaylist(context.Background(), u)
		if err == nil {
			pl = p
			if pl.Position() > from {
				return pl
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			raw := ""
			if pl != nil {
				raw = pl.Raw
			}
			t.Fatalf("playlist %s did not advance past %d within %v (last error %v); last playlist:\n%s", u, from, timeout, lastErr, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// ffprobe and decoding

type probeStream struct {
	Index        int    `json:"index"`
	CodecName    string `json:"codec_name"`
	CodecType    string `json:"codec_type"`
	Profile      string `json:"profile"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	AvgFrameRate string `json:"avg_frame_rate"`
	RFrameRate   string `json:"r_frame_rate"`
	NbReadFrames string `json:"nb_read_frames"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
	} `json:"format"`
}

// ByType returns the streams of one codec_type ("video" or "audio").
func (p *probeResult) ByType(kind string) []probeStream {
	var out []probeStream
	for _, s := range p.Streams {
		if s.CodecType == kind {
			out = append(out, s)
		}
	}
	return out
}

// ffprobe reads url and returns its streams.
func ffprobe(t *testing.T, u string, extra ...string) *probeResult {
	t.Helper()
	testutil.RequireTools(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-v", "error", "-rw_timeout", "15000000"}, extra...)
	args = append(args, "-show_streams", "-show_format", "-of", "json", u)
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", u, err, stderr.String())
	}
	var res probeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe %s: bad JSON: %v\n%s", u, err, out)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("ffprobe %s stderr:\n%s", u, s)
	}
	return &res
}

// decodeResult is what ffmpeg decoded from a URL.
type decodeResult struct {
	VideoFrames  int
	AudioFrames  int
	AudioSeconds float64
	VideoSize    string // from framecrc's "#dimensions"
	Stderr       string
	Err          error
}

// ffmpegDecode decodes up to dur of media from u (every video and audio
// stream, decoded to raw frames and checksummed by the framecrc muxer), and
// counts the frames. ffmpeg runs with -xerror, so a decode error ends it.
func ffmpegDecode(t *testing.T, u string, dur time.Duration, inputOpts ...string) decodeResult {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-xerror", "-rw_timeout", "15000000"}
	args = append(args, inputOpts...)
	args = append(args, "-i", u, "-map", "0:v?", "-map", "0:a?", "-t", fmt.Sprintf("%.3f", dur.Seconds()), "-f", "framecrc", "-")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := decodeResult{Stderr: stderr.String(), Err: err}
	if ctx.Err() != nil {
		res.Err = fmt.Errorf("ffmpeg hung: %w (%v)", ctx.Err(), err)
	}
	// framecrc: "#media_type 0: video", "#dimensions 0: 640x360",
	// "#tb 1: 1/48000", then "stream, dts, pts, duration, size, crc".
	kinds := map[string]string{}
	tbs := map[string]float64{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(line, "#") {
			key, val, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			f := strings.Fields(key)
			if len(f) != 2 {
				continue
			}
			idx := f[1]
			switch f[0] {
			case "#media_type":
				kinds[idx] = val
			case "#dimensions":
				res.VideoSize = val
			case "#tb":
				n, d, _ := strings.Cut(val, "/")
				nn, _ := strconv.ParseFloat(n, 64)
				dd, _ := strconv.ParseFloat(d, 64)
				if dd > 0 {
					tbs[idx] = nn / dd
				}
			}
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 6 {
			continue
		}
		idx := strings.TrimSpace(f[0])
		switch kinds[idx] {
		case "video":
			res.VideoFrames++
		case "audio":
			res.AudioFrames++
			d, _ := strconv.ParseFloat(strings.TrimSpace(f[3]), 64)
			res.AudioSeconds += d * tbs[idx]
		}
	}
	return res
}

// errorLines returns the non-empty lines of ffmpeg's stderr at -v error.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
