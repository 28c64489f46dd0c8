package transcoder

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// AV1 and VP9 rungs come back from the child as fragmented MP4, since
// MPEG-TS cannot carry them. ffmpeg's fragmented MP4 does not keep the
// input timestamps (its first decode time is 0, -copyts or not), so the
// rung's timeline is put back on the source's with an offset: the child
// starts on a source keyframe and encodes with -fps_mode passthrough, so
// the rung's first frame is that keyframe, and AV1 and VP9 have no frame
// reordering (DTS = PTS). These rungs carry video only: the audio of an
// fMP4 fragment is not placed reliably on the source's timeline, and the
// packager takes the audio from another rung of the ladder (it groups audio
// by codec, rate and channels).

// maxBoxSize bounds one top-level box of the child's output; the child's
// bytes are untrusted input.
const maxBoxSize = 64 << 20

var errBoxTooLarge = errors.New("fMP4 box too large")

// boxReader reads the top-level boxes of an MP4 byte stream.
type boxReader struct {
	r   io.Reader
	max int64
}

// next returns the next top-level box, header included, and its type.
// It returns io.EOF at a clean end, io.ErrUnexpectedEOF inside a box.
func (b *boxReader) next() (typ string, box []byte, err error) {
	var hdr [16]byte
	if _, err := io.ReadFull(b.r, hdr[:8]); err != nil {
		return "", nil, err
	}
	size := int64(binary.BigEndian.Uint32(hdr[:4]))
	typ = string(hdr[4:8])
	hlen := int64(8)
	switch size {
	case 0:
		return "", nil, fmt.Errorf("fMP4 box %q runs to the end of the stream, which a live output cannot do", printable(typ))
	case 1:
		if _, err := io.ReadFull(b.r, hdr[8:16]); err != nil {
			return "", nil, noEOF(err)
		}
		u := binary.BigEndian.Uint64(hdr[8:16])
		if u > math.MaxInt64 {
			return "", nil, fmt.Errorf("%w: box %q of %d bytes", errBoxTooLarge, printable(typ), u)
		}
		size, hlen = int64(u), 16
	}
	if size < hlen {
		return "", nil, fmt.Errorf("fMP4 box %q: invalid size %d", printable(typ), size)
	}
	limit := b.max
	if limit <= 0 {
		limit = maxBoxSize
	}
	if size > limit {
		return "", nil, fmt.Errorf("%w: box %q of %d bytes (at most %d)", errBoxTooLarge, printable(typ), size, limit)
	}
	box = make([]byte, size)
	copy(box, hdr[:hlen])
	if _, err := io.ReadFull(b.r, box[hlen:]); err != nil {
		return "", nil, noEOF(err)
	}
	return typ, box, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// printable keeps a box type fit for an error message.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// fmp4Demux turns one child's fMP4 output of one rung into video samples
// on the source's timeline.
type fmp4Demux struct {
	name string
	// offset is the tick value (90 kHz, inputBase included, as toTicks
	// gives) of the rung's first frame.
	offset int64
	// onVideo gets each video sample; codec is nil until it is known.
	onVideo func(vc codecs.Codec, dts, pts time.Duration, key bool, payload []byte)

	ftyp      []byte
	moof      []byte
	trackID   int
	timeScale int64
	codec     codecs.Codec
	first     uint64 // decode time of the first sample
	hasFirst  bool
}

// run reads boxes until the output ends. It returns nil at a clean end.
func (d *fmp4Demux) run(r io.Reader) error {
	br := &boxReader{r: r}
	for {
		typ, box, err := br.next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return fmt.Errorf("rendition %s: reading fMP4: %w", d.name, err)
		}
		if err := d.onBox(typ, box); err != nil {
			return fmt.Errorf("rendition %s: %w", d.name, err)
		}
	}
}

func (d *fmp4Demux) onBox(typ string, box []byte) error {
	switch typ {
	case "ftyp":
		d.ftyp = box
	case "moov":
		if d.ftyp == nil {
			return errors.New("fMP4 moov before ftyp")
		}
		return d.onInit(append(append(make([]byte, 0, len(d.ftyp)+len(box)), d.ftyp...), box...))
	case "moof":
		d.moof = box
	case "mdat":
		if d.moof == nil {
			return nil // not a fragment's
		}
		frag := append(d.moof, box...)
		d.moof = nil
		return d.onFragment(frag)
	}
	// styp, sidx, free, mfra...: nothing to do.
	return nil
}

func (d *fmp4Demux) onInit(b []byte) error {
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("fMP4 init: %w", err)
	}
	for _, t := range init.Tracks {
		switch t.Codec.(type) {
		case *codecs.AV1, *codecs.VP9:
			if t.TimeScale == 0 {
				return errors.New("fMP4 init: video track with time scale 0")
			}
			d.trackID, d.timeScale, d.codec = t.ID, int64(t.TimeScale), t.Codec
			return nil
		}
	}
	return errors.New("ffmpeg's output has no AV1 or VP9 video")
}

func (d *fmp4Demux) onFragment(b []byte) error {
	if d.codec == nil {
		return errors.New("fMP4 fragment before the init segment")
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		return fmt.Errorf("fMP4 fragment: %w", err)
	}
	if len(parts) != 1 {
		return fmt.Errorf("fMP4 fragment: %d parts in one moof", len(parts))
	}
	// The parser ignores the trun's first_sample_flags, which ffmpeg uses
	// to mark the keyframe that starts a fragment.
	firsts := firstSampleFlags(b)
	for i, t := range parts[0].Tracks {
		if t.ID != d.trackID {
			continue
		}
		if i < len(firsts) {
			for _, f := range firsts[i] {
				if f.sample < len(t.Samples) {
					t.Samples[f.sample].IsNonSyncSample = f.flags&sampleIsNonSync != 0
				}
			}
		}
		dt := t.BaseTime
		for _, s := range t.Samples {
			d.onSample(dt, s)
			dt += uint64(s.Duration)
		}
	}
	return nil
}

// sampleIsNonSync is sample_is_non_sync_sample in ISO/IEC 14496-12 sample
// flags.
const sampleIsNonSync = 1 << 16

type firstFlags struct {
	sample int // index among the traf's samples
	flags  uint32
}

// firstSampleFlags walks a moof (at the start of b) and returns, per traf
// in order, the first_sample_flags of its truns that have them. Malformed
// boxes end the walk: Parts.Unmarshal has vetted the structure already.
func firstSampleFlags(b []byte) [][]firstFlags {
	var out [][]firstFlags
	moof, _, ok := childBox(b, "moof")
	if !ok {
		return nil
	}
	for rest := moof; len(rest) >= 8; {
		typ, payload, next, ok := nextBox(rest)
		if !ok {
			break
		}
		rest = next
		if typ != "traf" {
			continue
		}
		var ffs []firstFlags
		n := 0
		for tr := payload; len(tr) >= 8; {
			typ, p, next, ok := nextBox(tr)
			if !ok {
				break
			}
			tr = next
			if typ != "trun" || len(p) < 8 {
				continue
			}
			flags := binary.BigEndian.Uint32(p[0:4]) & 0xffffff
			count := int(binary.BigEndian.Uint32(p[4:8]))
			pos := 8
			if flags&0x1 != 0 {
				pos += 4
			}
			if flags&0x4 != 0 && len(p) >= pos+4 && count > 0 {
				ffs = append(ffs, firstFlags{sample: n, flags: binary.BigEndian.Uint32(p[pos : pos+4])})
			}
			n += min(count, 1<<20)
		}
		out = append(out, ffs)
	}
	return out
}

// childBox returns the payload of the box of type typ at the start of b.
func childBox(b []byte, typ string) (payload, rest []byte, ok bool) {
	t, p, r, ok := nextBox(b)
	if !ok || t != typ {
		return nil, nil, false
	}
	return p, r, true
}

// nextBox splits the first box (32-bit size only) off b.
func nextBox(b []byte) (typ string, payload, rest []byte, ok bool) {
	if len(b) < 8 {
		return "", nil, nil, false
	}
	size := binary.BigEndian.Uint32(b[:4])
	if size < 8 || uint64(size) > uint64(len(b)) {
		return "", nil, nil, false
	}
	return string(b[4:8]), b[8:size], b[size:], true
}

func (d *fmp4Demux) onSample(dt uint64, s *fmp4.Sample) {
	if !d.hasFirst {
		d.first, d.hasFirst = dt, true
	}
	if dt < d.first || dt-d.first > math.MaxInt64/90000 {
		return
	}
	rel := int64(dt - d.first)
	dts := d.offset + d.ticks(rel)
	pts := d.offset + d.ticks(rel+int64(s.PTSOffset))
	key := !s.IsNonSyncSample
	if c, ok := d.codec.(*codecs.AV1); ok && len(c.SequenceHeader) == 0 && key {
		// No configOBUs in av1C: take the sequence header from the keyframe.
		if sh := av1SequenceHeader(s.Payload); sh != nil {
			d.codec = &codecs.AV1{SequenceHeader: sh}
		}
	}
	d.onVideo(d.codec, fromTicks(dts), fromTicks(pts), key, s.Payload)
}

// ticks converts a duration in the track's time scale into 90 kHz ticks.
func (d *fmp4Demux) ticks(v int64) int64 {
	if d.timeScale == 90000 {
		return v
	}
	return v/d.timeScale*90000 + (v%d.timeScale*90000+d.timeScale/2)/d.timeScale
}

// av1SequenceHeader returns the sequence header OBU of a sample, or nil.
func av1SequenceHeader(payload []byte) []byte {
	var bs av1.Bitstream
	if err := bs.Unmarshal(payload); err != nil {
		return nil
	}
	for _, obu := range bs {
		if len(obu) > 0 && av1.OBUType((obu[0]>>3)&0x0f) == av1.OBUTypeSequenceHeader {
			return obu
		}
	}
	return nil
}

// demuxFMP4Rung reads one child's fMP4 output of an AV1 or VP9 rung until
// it ends, publishing into ro. offset is the tick value (as toTicks gives)
// of the rung's first frame. If the output cannot be read, the rest of it
// is drained so that the child never blocks on it.
func demuxFMP4Rung(r io.Reader, ro *rungOut, offset int64) error {
	defer func() { _, _ = io.Copy(io.Discard, r) }()
	d := &fmp4Demux{name: ro.name, offset: offset,
		onVideo: func(vc codecs.Codec, dts, pts time.Duration, key bool, payload []byte) {
			ro.writeVideo(vc, nil, dts, pts, key, payload)
		}}
	return d.run(bufio.NewReaderSize(r, 64<<10))
}

// firstOutTicks is the tick value of a rung's first frame, given the tick
// value of the keyframe the child started on: the fps filter moves it onto
// its own grid (rounding to the nearest), passthrough keeps it.
func firstOutTicks(r *plannedRung, startTicks int64) int64 {
	if r.Video.FPS <= 0 {
		return startTicks
	}
	n := math.Round(float64(startTicks) / 90000 * r.Video.FPS)
	return int64(math.Round(n / r.Video.FPS * 90000))
}
