package tsdemux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/mps-dev/mps/stream"
)

// DefaultOffset is added to every timestamp the Muxer writes when Offset
// is zero, so that the PCR, which runs a little ahead of the DTS, is never
// negative.
const DefaultOffset = 10 * time.Second

// ErrBadUnit marks an access unit the Muxer skipped because it cannot be
// muxed (empty, or not in MP4 sample form).
var ErrBadUnit = errors.New("access unit cannot be muxed")

// Muxer writes the access units of hub tracks as MPEG-TS: Annex-B H.264 or
// H.265 with the parameter sets before every keyframe, ADTS AAC, Opus. Set
// the fields, call Initialize, then WriteUnit.
type Muxer struct {
	W io.Writer
	// Tracks are the session's tracks; those in other codecs are left out.
	Tracks []*stream.Track
	// Offset is added to every timestamp. Zero means DefaultOffset.
	Offset time.Duration
	// ChunkSize, when set, makes every Write to W at most this long (and a
	// multiple of 188 when ChunkSize is). SRT wants 1316: seven TS packets
	// per datagram. Zero writes each access unit at once.
	ChunkSize int

	w       *mpegts.Writer
	buf     bytes.Buffer
	tracks  map[*stream.Track]*muxTrack
	hasVid  bool
	started bool // a video keyframe was written (or there is no video)
}

type muxTrack struct {
	tt     *mpegts.Track
	hevc   bool
	params [][]byte
	last   time.Duration
	wrote  bool
}

// Initialize sets the muxer up. It fails when no track is supported.
func (m *Muxer) Initialize() error {
	if m.Offset == 0 {
		m.Offset = DefaultOffset
	}
	m.tracks = make(map[*stream.Track]*muxTrack)
	var tts []*mpegts.Track
	for _, t := range m.Tracks {
		mt := &muxTrack{}
		switch c := t.Codec.(type) {
		case *codecs.H264:
			mt.tt = &mpegts.Track{Codec: &tscodecs.H264{}}
			mt.params = nonEmpty(c.SPS, c.PPS)
		case *codecs.H265:
			mt.tt = &mpegts.Track{Codec: &tscodecs.H265{}}
			mt.params = nonEmpty(c.VPS, c.SPS, c.PPS)
			mt.hevc = true
		case *codecs.MPEG4Audio:
			mt.tt = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: c.Config}}
		case *codecs.Opus:
			mt.tt = &mpegts.Track{Codec: &tscodecs.Opus{ChannelCount: max(c.ChannelCount, 1)}} //nolint:staticcheck // the writer takes it
		default:
			continue
		}
		if t.IsVideo() {
			if m.hasVid {
				continue // one video track: the first
			}
			m.hasVid = true
		}
		m.tracks[t] = mt
		tts = append(tts, mt.tt)
	}
	if len(tts) == 0 {
		return ErrNoSupportedTracks
	}
	m.started = !m.hasVid
	m.w = &mpegts.Writer{W: &m.buf, Tracks: tts}
	return m.w.Initialize()
}

// Supported reports whether the muxer writes the track's units.
func (m *Muxer) Supported(t *stream.Track) bool { _, ok := m.tracks[t]; return ok }

func nonEmpty(bs ...[]byte) [][]byte {
	var out [][]byte
	for _, b := range bs {
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// WriteUnit muxes one access unit and writes it to W. Units of other
// tracks, video before the first keyframe, audio before the first video
// keyframe and units that go back in time are skipped without an error;
// ErrBadUnit reports a broken unit; other errors come from W.
func (m *Muxer) WriteUnit(au *stream.AccessUnit) error {
	mt, ok := m.tracks[au.Track]
	if !ok {
		return nil
	}
	video := au.Track.IsVideo()
	if video && !m.started {
		if !au.Key {
			return nil
		}
		m.started = true
	}
	if !m.started || (mt.wrote && au.DTS < mt.last) {
		return nil
	}
	if len(au.Payload) == 0 {
		return fmt.Errorf("%w: empty payload", ErrBadUnit)
	}
	pts := stream.Ticks(au.PTS+m.Offset, 90000) & tsMask
	dts := stream.Ticks(au.DTS+m.Offset, 90000) & tsMask
	m.buf.Reset()
	var err error
	switch mt.tt.Codec.(type) {
	case *tscodecs.H264, *tscodecs.H265:
		var avcc h264.AVCC
		if err := avcc.Unmarshal(au.Payload); err != nil || len(avcc) == 0 {
			return fmt.Errorf("%w: %v", ErrBadUnit, err)
		}
		nalus := [][]byte(avcc)
		if au.Key && len(mt.params) > 0 {
			nalus = append(append(make([][]byte, 0, len(mt.params)+len(avcc)), mt.params...), avcc...)
		}
		for _, n := range nalus {
			if len(n) == 0 {
				return fmt.Errorf("%w: empty NAL unit", ErrBadUnit)
			}
		}
		if mt.hevc {
			err = m.w.WriteH265(mt.tt, pts, dts, nalus)
		} else {
			err = m.w.WriteH264(mt.tt, pts, dts, nalus)
		}
	case *tscodecs.MPEG4Audio:
		if len(au.Payload) > 8191-7 {
			return fmt.Errorf("%w: AAC frame too large for ADTS", ErrBadUnit)
		}
		err = m.w.WriteMPEG4Audio(mt.tt, pts, [][]byte{au.Payload})
	case *tscodecs.Opus:
		err = m.w.WriteOpus(mt.tt, pts, [][]byte{au.Payload})
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadUnit, err)
	}
	mt.last, mt.wrote = au.DTS, true
	return m.flush()
}

func (m *Muxer) flush() error {
	b := m.buf.Bytes()
	for len(b) > 0 {
		n := len(b)
		if m.ChunkSize > 0 {
			n = min(n, m.ChunkSize)
		}
		if _, err := m.W.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	m.buf.Reset()
	return nil
}
