package packager

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// A source stream with a ladder (Config.Ladders) offers its renditions in
// its own index.m3u8 and manifest.mpd. Each rendition is an ordinary hub
// stream packaged by its own muxer; the source's manifests only point into
// the renditions' folders. Renditions share the source's timeline (see
// muxer.link), so their segments start at the same times.

// variant is one stream a ladder offers, found when a manifest is rendered.
type variant struct {
	m   *muxer
	dir string // its folder relative to the source's: "" for the source itself, else ending in "/"
	id  string // for DASH Representation ids
}

// variants returns the streams the ladder of source m offers that are being
// packaged now, in ladder order; nil when m has no ladder. Called with m.mu
// read-locked; the other variants are not locked.
//
// Rendering a ladder locks each variant's muxer while the source's is
// held. To keep that free of lock cycles, a variant that has a ladder of its
// own is left out, and a rendition never gets a ladder.
func (p *Packager) variants(m *muxer) []variant {
	l := p.cfg.Ladders
	if l == nil {
		return nil
	}
	if src, ok := l.SourceOf(m.name); ok && src != m.name {
		return nil
	}
	names := l.Variants(m.name)
	if len(names) == 0 {
		return nil
	}
	var out []variant
	ids := make(map[string]bool, len(names))
	for _, n := range names {
		vm := m
		if n != m.name {
			if l.Variants(n) != nil {
				continue
			}
			if vm = p.muxer(n); vm == nil {
				continue
			}
		}
		dir := relDir(m.name, n)
		id := variantID(dir)
		if ids[id] {
			continue // listed twice
		}
		ids[id] = true
		out = append(out, variant{m: vm, dir: dir, id: id})
	}
	return out
}

// with runs fn with v's muxer read-locked (the source's is locked already).
func (v *variant) with(src *muxer, fn func()) {
	if v.m != src {
		v.m.mu.RLock()
		defer v.m.mu.RUnlock()
	}
	fn()
}

// live reports whether v may be offered: renditions that ended drop out.
// Called with v.m.mu held.
func (v *variant) live(src *muxer) bool {
	return v.m.period != nil && (v.m == src || !v.m.ended)
}

// relDir is the folder of stream to, relative to the folder of stream from
// (where from's manifests are served), ending in "/"; "" when they are the
// same stream.
func relDir(from, to string) string {
	if to == from {
		return ""
	}
	if rest, ok := strings.CutPrefix(to, from+"/"); ok {
		return rest + "/"
	}
	f, t := strings.Split(from, "/"), strings.Split(to, "/")
	i := 0
	for i < len(f) && i < len(t) && f[i] == t[i] {
		i++
	}
	return strings.Repeat("../", len(f)-i) + strings.Join(t[i:], "/") + "/"
}

func variantID(dir string) string {
	if dir == "" {
		return "source"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, strings.TrimSuffix(strings.ReplaceAll(dir, "../", "up-"), "/"))
}

// firstTracks returns the first video and the first audio track of p, or -1.
func (p *period) firstTracks() (video, audio int) {
	video, audio = -1, -1
	for i, tm := range p.tracks {
		switch {
		case tm.track.IsVideo() && video < 0:
			video = i
		case !tm.track.IsVideo() && audio < 0:
			audio = i
		}
	}
	return video, audio
}

// averageBandwidth is a track's mean bitrate over the complete segments of
// the current period, or 0 before the first one.
func (m *muxer) averageBandwidth(track int) int {
	var bytes int
	var dur time.Duration
	for _, s := range m.segments {
		if !s.complete || s.period != m.period || track >= len(s.tracks) {
			continue
		}
		bytes += s.tracks[track].size()
		dur += stream.FromTicks(s.tracks[track].duration(), m.period.tracks[track].timescale)
	}
	if dur <= 0 {
		return 0
	}
	return int(math.Round(float64(bytes*8) / dur.Seconds()))
}

// hlsVariant is what the multivariant playlist says about one variant.
type hlsVariant struct {
	dir          string
	video, audio int
	codecs       string // video (or audio-only) codecs
	audioCodecs  string
	audioKey     string
	channels     int
	bandwidth    int
	avgBandwidth int
	width        int
	height       int
	fps          float64
}

// renderLadderMultivariant renders the multivariant playlist of a source
// with a ladder: one EXT-X-STREAM-INF per variant that has a complete
// segment, and one audio rendition per kind of audio the variants carry.
// It returns nil when m has no ladder or no variant is ready yet. Called
// with m.mu read-locked.
func (p *Packager) renderLadderMultivariant(m *muxer) []byte {
	var hv []hlsVariant
	for _, v := range p.variants(m) {
		v.with(m, func() {
			vm := v.m
			if !v.live(m) || !vm.hasCompleteSegment() || len(vm.playlists) == 0 {
				return
			}
			video, audio := vm.period.firstTracks()
			h := hlsVariant{dir: v.dir, video: video, audio: audio}
			if audio >= 0 {
				a := vm.period.tracks[audio]
				rate, ch := a.track.AudioFormat()
				h.audioCodecs, h.channels = a.codecs, max(ch, 1)
				h.audioKey = fmt.Sprintf("%s/%d/%d", a.codecs, rate, h.channels)
				h.bandwidth += vm.bandwidth(audio)
				h.avgBandwidth += vm.averageBandwidth(audio)
			}
			if video >= 0 {
				tm := vm.period.tracks[video]
				h.codecs = tm.codecs
				h.bandwidth += vm.bandwidth(video)
				h.avgBandwidth += vm.averageBandwidth(video)
				h.width, h.height = tm.track.Resolution()
				h.fps = vm.frameRate(video)
			} else {
				h.codecs = h.audioCodecs
			}
			hv = append(hv, h)
		})
	}
	if len(hv) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	// Rungs normally carry the same audio: list it once per kind.
	groups := map[string]string{}
	for _, h := range hv {
		if h.video < 0 || h.audio < 0 || groups[h.audioKey] != "" {
			continue
		}
		id := "audio"
		if n := len(groups); n > 0 {
			id = fmt.Sprintf("audio%d", n+1)
		}
		groups[h.audioKey] = id
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"%s\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s%s\"\n",
			id, h.channels, h.dir, mediaPlaylistName(h.audio))
	}
	for _, h := range hv {
		if h.video < 0 {
			fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\"\n%s%s\n",
				h.bandwidth, avgOr(h.avgBandwidth, h.bandwidth), h.codecs, h.dir, mediaPlaylistName(h.audio))
			continue
		}
		codecs := h.codecs
		if h.audio >= 0 {
			codecs += "," + h.audioCodecs
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\"", h.bandwidth, avgOr(h.avgBandwidth, h.bandwidth), codecs)
		if h.width > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", h.width, h.height)
		}
		if h.fps > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", h.fps)
		}
		if h.audio >= 0 {
			fmt.Fprintf(&b, ",AUDIO=\"%s\"", groups[h.audioKey])
		}
		fmt.Fprintf(&b, "\n%s%s\n", h.dir, mediaPlaylistName(h.video))
	}
	return []byte(b.String())
}

func avgOr(avg, peak int) int {
	if avg <= 0 || avg > peak {
		return peak
	}
	return avg
}

// segmentsIn returns m's complete listed segments that belong to period P
// of the source: P's own, for the source itself, or for a rendition those
// of its periods that share P's timeline. A Representation has one init
// segment, so only the newest run of one of m's periods is returned.
// Called with m.mu held.
func (m *muxer) segmentsIn(P *period, self bool) []*segment {
	var run []*segment
	for _, s := range m.completeListed() {
		in := s.period == P
		if !self {
			in = s.period.src == P && s.start >= P.mediaStart-cutTolerance
		}
		if !in {
			continue
		}
		if len(run) > 0 && run[len(run)-1].period != s.period {
			run = nil
		}
		run = append(run, s)
	}
	return run
}

// renderLadderMPD renders the MPD of a source with a ladder: per Period one
// video AdaptationSet with a Representation per variant that has complete
// segments in it, and one audio AdaptationSet. It returns nil when m has no
// ladder. Called with m.mu read-locked.
func (p *Packager) renderLadderMPD(m *muxer, now time.Time) []byte {
	vs := p.variants(m)
	if vs == nil {
		return nil
	}
	type dashPeriod struct {
		p            *period
		video, audio []dashRep
	}
	complete := m.completeListed()
	var periods []dashPeriod
	var maxSeg time.Duration
	for _, segs := range byPeriod(complete) {
		P := segs[0].period
		dp := dashPeriod{p: P}
		audioKeys := map[string]bool{}
		add := func(vm *muxer, id, dir string, vsegs []*segment) {
			video, audio := vsegs[0].period.firstTracks()
			if video >= 0 {
				dp.video = append(dp.video, vm.dashRep("video-"+id, video, vsegs, P, dir))
			}
			if audio >= 0 {
				r := vm.dashRep("audio-"+id, audio, vsegs, P, dir)
				if !audioKeys[r.audioKey()] {
					audioKeys[r.audioKey()] = true
					dp.audio = append(dp.audio, r)
				}
			}
		}
		for _, v := range vs {
			v.with(m, func() {
				if !v.live(m) {
					return
				}
				if vsegs := v.m.segmentsIn(P, v.m == m); len(vsegs) > 0 {
					add(v.m, v.id, v.dir, vsegs)
				}
			})
		}
		if len(dp.video) == 0 && len(dp.audio) == 0 {
			// No variant has reached this period yet: offer the source.
			add(m, "source", "", segs)
		}
		for _, list := range [][]dashRep{dp.video, dp.audio} {
			for _, r := range list {
				for _, s := range r.timeline {
					maxSeg = max(maxSeg, stream.FromTicks(s.d, r.timescale))
				}
			}
		}
		periods = append(periods, dp)
	}
	var b strings.Builder
	b.Grow(8192)
	m.writeMPDHeader(&b, complete, now, maxSeg)
	for _, dp := range periods {
		fmt.Fprintf(&b, `  <Period id="%d" start="%s">`+"\n", dp.p.id, isoStart(dp.p.presStart))
		for i, set := range []struct {
			kind string
			reps []dashRep
		}{{"video", dp.video}, {"audio", dp.audio}} {
			if len(set.reps) == 0 {
				continue
			}
			fmt.Fprintf(&b, `    <AdaptationSet id="%d" contentType="%s" mimeType="%s" segmentAlignment="true" startWithSAP="1">`+"\n", i, set.kind, set.reps[0].mime)
			for j := range set.reps {
				writeRep(&b, &set.reps[j])
			}
			b.WriteString("    </AdaptationSet>\n")
		}
		b.WriteString("  </Period>\n")
	}
	writeMPDFooter(&b, m.ended, now)
	return []byte(b.String())
}
