package packager

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mps-dev/mps/stream"
)

// VOD is a finished presentation, such as a time range of recordings,
// served as HLS VOD and a static DASH MPD. Its periods play one after the
// other (an HLS discontinuity and a DASH Period each).
type VOD struct {
	Periods []VODPeriod
	// SegmentDuration is the target segment length; segments are cut on
	// the first keyframe of the driving track at or after it (default 2 s).
	SegmentDuration time.Duration
	// Variants makes every video track a variant (rendition) of the same
	// presentation, as the rungs of an adaptive ladder are: the
	// multivariant playlist offers one EXT-X-STREAM-INF per video track,
	// in track order and all with the first audio track as their audio
	// rendition, and the MPD one Representation per video track in a
	// single video AdaptationSet. Every video track is cut at the same
	// times as the driving track (the first video track), which needs
	// keyframes at those times on every video track (within
	// MaxVariantSkew); a period where one is missing fails to lay out.
	// Without Variants only the first video track is offered in HLS, and
	// each track has its own AdaptationSet.
	Variants bool
}

// MaxVariantSkew is how far a keyframe of a video variant may be from the
// driving track's segment start it is cut at.
const MaxVariantSkew = 100 * time.Millisecond

// VODPeriod is a run of samples with one set of codec parameters.
type VODPeriod struct {
	Tracks []*stream.Track
	// Timescales are the tick rates of the samples' timestamps, per track.
	Timescales []uint32
	// Samples lists each track's samples in decode order; the driving
	// track (the first video track, else the first track) starts on a
	// keyframe.
	Samples [][]VODSample
	// Start is the wall-clock time of the first sample of the driving
	// track, for EXT-X-PROGRAM-DATE-TIME.
	Start time.Time
	// Media holds the sample payloads at VODSample.Offset.
	Media io.ReaderAt
}

// VODSample is one sample of a VODPeriod track.
type VODSample struct {
	DTS       int64 // in the track's timescale
	Duration  uint32
	PTSOffset int32
	Key       bool
	Offset    int64 // of the payload in VODPeriod.Media
	Size      uint32
}

// defaultVODSegment is the segment length of a VOD that sets none.
const defaultVODSegment = 2 * time.Second

// maxVODSegmentBytes bounds the payload read for one segment of one track.
const maxVODSegmentBytes = 256 << 20

// errEmptySegment marks a segment that holds no sample of a track: the
// playlists list it as a gap.
var errEmptySegment = errors.New("segment has no samples of this track")

func (v *VOD) segmentDuration() time.Duration {
	if v.SegmentDuration > 0 {
		return v.SegmentDuration
	}
	return defaultVODSegment
}

// vodLayout is where a VOD's segments are cut. It is computed from the
// sample tables alone, on every request, so that a playlist and the segment
// requests made from it always agree.
type vodLayout struct {
	periods  []*vodPeriodLayout
	tracks   int // the most tracks of any period
	duration time.Duration
	target   time.Duration // segment duration asked for
	variants bool          // VOD.Variants
}

// vodPeriodLayout is the segmentation of one period.
type vodPeriodLayout struct {
	p      *VODPeriod
	index  int
	driver int
	tms    []*trackMuxer // per track: its init segment and fragment encoder
	// starts holds, per segment, the index of its first sample of each
	// track; the segment ends where the next one starts (the last one at
	// the end of the track).
	starts [][]int
	// mediaStart and mediaEnd bound the driving track's samples; presStart
	// is where the period starts on the DASH presentation timeline, which
	// has no gaps between periods.
	mediaStart, mediaEnd, presStart time.Duration
}

func newVODLayout(v *VOD) (*vodLayout, error) {
	l := &vodLayout{target: v.segmentDuration(), variants: v.Variants}
	for i := range v.Periods {
		pl, err := layoutPeriod(v, i)
		if err != nil {
			return nil, err
		}
		pl.presStart = l.duration
		l.duration += pl.mediaEnd - pl.mediaStart
		l.tracks = max(l.tracks, len(pl.tms))
		l.periods = append(l.periods, pl)
	}
	return l, nil
}

// layoutPeriod cuts period i of v: a segment starts on every keyframe of
// the driving track at least the target duration after the previous
// start, and every other track's samples go into the segment that is
// playing at their DTS.
func layoutPeriod(v *VOD, i int) (*vodPeriodLayout, error) {
	p := &v.Periods[i]
	if err := checkPeriod(p); err != nil {
		return nil, fmt.Errorf("vod period %d: %w", i, err)
	}
	pl := &vodPeriodLayout{p: p, index: i, driver: driverTrack(p.Tracks)}
	for t, track := range p.Tracks {
		// The track's own timescale comes from the sample tables.
		tr := *track
		tr.ClockRate = int(p.Timescales[t])
		tm, err := newTrackMuxer(&tr)
		if err != nil {
			return nil, fmt.Errorf("vod period %d: %w", i, err)
		}
		pl.tms = append(pl.tms, tm)
	}
	ds := p.Samples[pl.driver]
	if len(ds) == 0 {
		return pl, nil
	}
	dts := p.Timescales[pl.driver]
	pl.mediaStart = stream.FromTicks(ds[0].DTS, dts)
	pl.mediaEnd = max(pl.mediaStart, stream.FromTicks(ds[len(ds)-1].DTS+int64(ds[len(ds)-1].Duration), dts))

	step := stream.Ticks(v.segmentDuration(), dts)
	cuts := []int{0}
	for j, from := 1, ds[0].DTS; j < len(ds); j++ {
		if ds[j].Key && ds[j].DTS-from >= step {
			cuts = append(cuts, j)
			from = ds[j].DTS
		}
	}
	bounds := make([]time.Duration, len(cuts))
	for k, j := range cuts {
		bounds[k] = stream.FromTicks(ds[j].DTS, dts)
	}
	n := len(p.Tracks)
	flat := make([]int, len(cuts)*n)
	pl.starts = make([][]int, len(cuts))
	for k := range pl.starts {
		pl.starts[k] = flat[k*n : (k+1)*n]
	}
	for t, samples := range p.Samples {
		k := 0
		for j, s := range samples {
			at := stream.FromTicks(s.DTS, p.Timescales[t])
			for k+1 < len(bounds) && at >= bounds[k+1] {
				k++
				pl.starts[k][t] = j
			}
		}
		for k++; k < len(bounds); k++ {
			pl.starts[k][t] = len(samples)
		}
	}
	if v.Variants {
		for t, track := range p.Tracks {
			if t == pl.driver || !track.IsVideo() {
				continue
			}
			if err := pl.alignVariant(t, bounds); err != nil {
				return nil, fmt.Errorf("vod period %d: %w", i, err)
			}
		}
	}
	return pl, nil
}

// alignVariant cuts video track t on its keyframes nearest to bounds, the
// segment starts of the driving track, so that its segments line up with
// the driving track's.
func (pl *vodPeriodLayout) alignVariant(t int, bounds []time.Duration) error {
	samples := pl.p.Samples[t]
	ts := pl.p.Timescales[t]
	if len(samples) == 0 {
		return nil
	}
	at := func(j int) time.Duration { return stream.FromTicks(samples[j].DTS, ts) }
	if !samples[0].Key {
		return fmt.Errorf("video track %d does not start on a keyframe", t)
	}
	if d := at(0) - bounds[0]; d > MaxVariantSkew || d < -MaxVariantSkew {
		return fmt.Errorf("video track %d starts at %s, track %d at %s", t, at(0), pl.driver, bounds[0])
	}
	j := 0
	for k := 1; k < len(bounds); k++ {
		for j++; j < len(samples) && (!samples[j].Key || at(j) < bounds[k]-MaxVariantSkew); j++ {
		}
		if j == len(samples) || at(j) > bounds[k]+MaxVariantSkew {
			return fmt.Errorf("video track %d has no keyframe within %s of %s, where segment %d of track %d starts",
				t, MaxVariantSkew, bounds[k], k, pl.driver)
		}
		pl.starts[k][t] = j
	}
	return nil
}

func checkPeriod(p *VODPeriod) error {
	n := len(p.Tracks)
	switch {
	case n == 0:
		return errors.New("no tracks")
	case n > maxTracks:
		return fmt.Errorf("%d tracks, at most %d allowed", n, maxTracks)
	case len(p.Timescales) != n || len(p.Samples) != n:
		return fmt.Errorf("%d tracks but %d timescales and %d sample tables", n, len(p.Timescales), len(p.Samples))
	case p.Media == nil:
		return errors.New("no media")
	}
	for t, track := range p.Tracks {
		switch {
		case track == nil || track.Codec == nil:
			return fmt.Errorf("track %d has no codec", t)
		case p.Timescales[t] == 0:
			return fmt.Errorf("track %d has timescale 0", t)
		case len(p.Samples[t]) > 0 && p.Samples[t][0].DTS < 0:
			return fmt.Errorf("track %d starts at a negative DTS", t)
		}
	}
	return nil
}

// driverTrack is the track that decides where segments are cut: the first
// video track, else the first track.
func driverTrack(tracks []*stream.Track) int {
	for i, t := range tracks {
		if t.IsVideo() {
			return i
		}
	}
	return 0
}

func (pl *vodPeriodLayout) segments() int { return len(pl.starts) }

// samples returns track's samples in segment seg.
func (pl *vodPeriodLayout) samples(track, seg int) []VODSample {
	all := pl.p.Samples[track]
	end := len(all)
	if seg+1 < len(pl.starts) {
		end = pl.starts[seg+1][track]
	}
	return all[pl.starts[seg][track]:end]
}

// span is where segment seg of track starts and how long it lasts, in
// media time. A track with no samples in it (or no such track) gets the
// driving track's span.
func (pl *vodPeriodLayout) span(track, seg int) (start, d time.Duration) {
	if track >= len(pl.tms) || len(pl.samples(track, seg)) == 0 {
		track = pl.driver
	}
	samples := pl.samples(track, seg)
	ts := pl.p.Timescales[track]
	if len(samples) == 0 {
		return pl.mediaStart, 0
	}
	start = stream.FromTicks(samples[0].DTS, ts)
	return start, stream.FromTicks(sampleTicks(samples), ts)
}

func sampleTicks(samples []VODSample) int64 {
	var d int64
	for _, s := range samples {
		d += int64(s.Duration)
	}
	return d
}

// fragmentBytes is an upper bound of the size of the fragment holding
// samples: their payload plus a moof with one trun entry per sample.
func fragmentBytes(samples []VODSample) int {
	n := 96 + 16*len(samples)
	for _, s := range samples {
		n += int(s.Size)
	}
	return n
}

// dateTime is the wall-clock time of media time t of the period, or zero
// when the period has no start time.
func (pl *vodPeriodLayout) dateTime(t time.Duration) time.Time {
	if pl.p.Start.IsZero() {
		return time.Time{}
	}
	return pl.p.Start.Add(t - pl.mediaStart)
}

// encodeSegment reads the samples of track in segment seg and encodes them
// as one CMAF fragment, with the live packager's encoder.
func (pl *vodPeriodLayout) encodeSegment(track, seg int) ([]byte, error) {
	samples := pl.samples(track, seg)
	if len(samples) == 0 {
		return nil, errEmptySegment
	}
	payload, err := readPayloads(pl.p.Media, samples)
	if err != nil {
		return nil, fmt.Errorf("vod period %d track %d segment %d: %w", pl.index, track, seg, err)
	}
	fs := make([]fmp4.Sample, len(samples))
	off := 0
	for i, s := range samples {
		end := off + int(s.Size)
		fs[i] = fmp4.Sample{
			Duration:        s.Duration,
			PTSOffset:       s.PTSOffset,
			IsNonSyncSample: !s.Key,
			Payload:         payload[off:end:end],
		}
		off = end
	}
	pt, err := pl.tms[track].fragment(uint32(seg+1), samples[0].DTS, fs)
	if err != nil {
		return nil, fmt.Errorf("vod period %d segment %d: %w", pl.index, seg, err)
	}
	return pt.data, nil
}

// fragment encodes samples, the first at DTS base, as one CMAF fragment
// with sequence number seq.
func (tm *trackMuxer) fragment(seq uint32, base int64, samples []fmp4.Sample) (*part, error) {
	tm.sampleBuf = samples
	tm.samples = make([]*fmp4.Sample, len(samples))
	for i := range samples {
		tm.samples[i] = &samples[i]
	}
	tm.partBase, tm.sequence = base, seq-1
	return tm.cutPart()
}

// readPayloads reads the payloads of samples into one buffer, in one read
// per run of samples that lie back to back.
func readPayloads(r io.ReaderAt, samples []VODSample) ([]byte, error) {
	var total int64
	for _, s := range samples {
		total += int64(s.Size)
	}
	if total > maxVODSegmentBytes {
		return nil, fmt.Errorf("%d bytes of samples, more than %d", total, maxVODSegmentBytes)
	}
	buf := make([]byte, total)
	pos := 0
	for i := 0; i < len(samples); {
		from, end := samples[i].Offset, samples[i].Offset+int64(samples[i].Size)
		j := i + 1
		for j < len(samples) && samples[j].Offset == end {
			end += int64(samples[j].Size)
			j++
		}
		n := int(end - from)
		got, err := r.ReadAt(buf[pos:pos+n], from)
		if got < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read %d bytes of samples at %d: %w", n, from, err)
		}
		pos += n
		i = j
	}
	return buf, nil
}

// vodFile is a parsed VOD file name:
//
//	index.m3u8, manifest.mpd, t{track}.m3u8,
//	t{track}_p{period}_init.mp4, t{track}_p{period}_{segment}.m4s
//
// Numbers count from 0 and are written without leading zeros, so that each
// file has exactly one name.
type vodFile struct {
	kind                 fileKind
	track, period, index int
}

const (
	maxVODPeriods  = 1 << 20
	maxVODSegments = 1 << 30
)

func parseVODFileName(name string) (vodFile, bool) {
	var f vodFile
	switch name {
	case "index.m3u8":
		return vodFile{kind: fileMultivariant}, true
	case "manifest.mpd":
		return vodFile{kind: fileMPD}, true
	}
	rest, ok := strings.CutPrefix(name, "t")
	if !ok {
		return f, false
	}
	if num, ok := strings.CutSuffix(rest, ".m3u8"); ok {
		f.kind = fileMediaPlaylist
		f.track, ok = smallInt(num, maxTracks)
		return f, ok && f.name() == name
	}
	base, ok := strings.CutSuffix(rest, ".mp4")
	if ok {
		f.kind = fileInit
	} else if base, ok = strings.CutSuffix(rest, ".m4s"); ok {
		f.kind = fileSegment
	} else {
		return f, false
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 {
		return f, false
	}
	track, ok1 := smallInt(parts[0], maxTracks)
	pnum, ok2 := strings.CutPrefix(parts[1], "p")
	period, ok3 := smallInt(pnum, maxVODPeriods)
	f.track, f.period = track, period
	ok = ok1 && ok2 && ok3
	if f.kind == fileSegment {
		var ok4 bool
		f.index, ok4 = smallInt(parts[2], maxVODSegments)
		ok = ok && ok4
	}
	return f, ok && f.name() == name
}

// name is the file name of f; the inverse of parseVODFileName.
func (f vodFile) name() string {
	switch f.kind {
	case fileMultivariant:
		return "index.m3u8"
	case fileMPD:
		return "manifest.mpd"
	case fileMediaPlaylist:
		return mediaPlaylistName(f.track)
	case fileInit:
		return fmt.Sprintf("t%d_p%d_init.mp4", f.track, f.period)
	case fileSegment:
		return fmt.Sprintf("t%d_p%d_%d.m4s", f.track, f.period, f.index)
	}
	return ""
}

// vodSegmentTemplate is the DASH media template of a track of a period.
func vodSegmentTemplate(track, period int) string {
	return fmt.Sprintf("t%d_p%d_$Number$.m4s", track, period)
}

// ServeVOD serves file of v, a finished presentation, as HLS VOD
// (index.m3u8 and the media playlists it names) and as a static DASH MPD
// (manifest.mpd), with the init segments and segments both refer to. file
// is the last element of the request path. Segments are cut from v's
// sample tables on every request, and their payloads read from
// VODPeriod.Media when asked for. The URIs in playlists and MPDs are
// relative and carry the request's query.
func ServeVOD(w http.ResponseWriter, r *http.Request, v *VOD, file string) {
	if !allowPlayback(w, r) {
		return
	}
	f, ok := parseVODFileName(file)
	if !ok {
		httpError(w, http.StatusNotFound, "no such file")
		return
	}
	if v == nil || len(v.Periods) == 0 {
		httpError(w, http.StatusNotFound, "nothing to play")
		return
	}
	switch f.kind {
	case fileInit, fileSegment:
		serveVODMedia(w, r, v, f)
	default:
		serveVODManifest(w, r, v, f)
	}
}

func serveVODManifest(w http.ResponseWriter, r *http.Request, v *VOD, f vodFile) {
	l, err := newVODLayout(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if l.duration <= 0 {
		httpError(w, http.StatusNotFound, "nothing to play")
		return
	}
	q := relQuery(r.URL.RawQuery)
	switch f.kind {
	case fileMultivariant:
		writeBody(w, r, mimeHLS, cachePlaylist, l.renderMultivariant(q))
	case fileMPD:
		writeBody(w, r, "application/dash+xml", cachePlaylist, l.renderMPD(q))
	case fileMediaPlaylist:
		if f.track >= l.tracks {
			httpError(w, http.StatusNotFound, "no such track")
			return
		}
		writeBody(w, r, mimeHLS, cachePlaylist, l.renderMediaPlaylist(f.track, q))
	}
}

func serveVODMedia(w http.ResponseWriter, r *http.Request, v *VOD, f vodFile) {
	if f.period >= len(v.Periods) {
		httpError(w, http.StatusNotFound, "no such period")
		return
	}
	pl, err := layoutPeriod(v, f.period)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if f.track >= len(pl.tms) {
		httpError(w, http.StatusNotFound, "no such track in this period")
		return
	}
	tm := pl.tms[f.track]
	if f.kind == fileInit {
		writeBody(w, r, tm.mime, cacheMedia, tm.init)
		return
	}
	if f.index >= pl.segments() {
		httpError(w, http.StatusNotFound, "no such segment")
		return
	}
	data, err := pl.encodeSegment(f.track, f.index)
	switch {
	case errors.Is(err, errEmptySegment):
		httpError(w, http.StatusNotFound, err.Error())
	case err != nil:
		slog.Default().Error("vod segment", "file", f.name(), "error", err)
		httpError(w, http.StatusInternalServerError, "cannot read the segment's media")
	default:
		writeBody(w, r, segmentMime(tm.mime), cacheMedia, data)
	}
}

// segmentMime is the content type of a media segment of a track whose init
// segment has type mime.
func segmentMime(mime string) string {
	if mime == "video/mp4" {
		return "video/iso.segment"
	}
	return mime
}

// writeBody answers 200 with body (headers only for HEAD).
func writeBody(w http.ResponseWriter, r *http.Request, contentType, cacheControl string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// relQuery returns "?" and the raw query, or "" when there is none, for
// appending to a relative URI. Bytes that could end a playlist attribute or
// start a DASH template identifier ($) are percent-encoded.
func relQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	b.WriteByte('?')
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!*()+,;=:@/?&%", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
