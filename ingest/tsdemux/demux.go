// Package tsdemux converts between MPEG-TS and the hub's access units,
// for any protocol that carries MPEG-TS (SRT, UDP, HLS pulls).
//
// Demuxer reads H.264, H.265, AAC (ADTS) and Opus elementary streams and
// gives access units in MP4 sample form: AVCC length-prefixed NAL units
// without parameter sets (those go to the track's codec), raw AAC frames,
// raw Opus packets. Timestamps are unwrapped from 33 bits and count from the
// first timestamp of the stream. Muxer does the reverse for hub readers.
package tsdemux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/mps-dev/mps/stream"
)

// ErrNoSupportedTracks is returned by Demuxer.Initialize when the program
// has no H.264, H.265, AAC or Opus track.
var ErrNoSupportedTracks = errors.New("no supported tracks (want H.264, H.265, AAC or Opus)")

// tsMask keeps the 33 bits of an MPEG-TS timestamp.
const tsMask = 1<<33 - 1

// Track is one supported elementary stream of the input.
type Track struct {
	// PID is the track's MPEG-TS packet identifier.
	PID uint16
	// Codec holds the codec parameters in MP4 form. It is nil for H.264
	// and H.265 until the first parameter sets arrive, and it is replaced
	// by a new value (never modified) when they change.
	Codec codecs.Codec
	// ClockRate is 90000 for video and the sample rate for audio.
	ClockRate int

	vps, sps, pps []byte // the latest parameter sets seen
}

// Unit is one access unit of a track.
type Unit struct {
	Track *Track
	// Codec is the track's codec when the unit was read: a unit whose Codec
	// differs from the one a consumer published needs a new session.
	Codec codecs.Codec
	// DTS and PTS count from the first timestamp of the stream (any track).
	DTS, PTS time.Duration
	Key      bool
	Payload  []byte
}

// Demuxer reads MPEG-TS from R. Set the fields, call Initialize, then Read
// until it fails.
type Demuxer struct {
	R io.Reader
	// OnUnit receives every access unit, from Read's goroutine. An error
	// stops Read with that error.
	OnUnit func(Unit) error
	// OnIgnoredTrack, when set, is told about tracks of unsupported codecs.
	OnIgnoredTrack func(pid uint16, codec string)
	// OnDecodeError, when set, is told about data that was skipped.
	OnDecodeError func(error)

	r      *mpegts.Reader
	tracks []*Track
	td     mpegts.TimeDecoder
}

// Initialize reads until the program's tracks are known (the PMT, and for
// AAC the first frame).
func (d *Demuxer) Initialize() error {
	if d.OnUnit == nil {
		return errors.New("tsdemux: OnUnit is required")
	}
	d.r = &mpegts.Reader{R: d.R}
	if err := d.r.Initialize(); err != nil {
		return fmt.Errorf("mpeg-ts: %w", err)
	}
	d.r.OnDecodeError(func(err error) {
		if d.OnDecodeError != nil {
			d.OnDecodeError(err)
		}
	})
	for _, tt := range d.r.Tracks() {
		switch c := tt.Codec.(type) {
		case *tscodecs.H264:
			t := d.add(tt.PID, nil, 90000)
			d.r.OnDataH264(tt, func(pts, dts int64, au [][]byte) error { return d.onH26x(t, pts, dts, au, false) })
		case *tscodecs.H265:
			t := d.add(tt.PID, nil, 90000)
			d.r.OnDataH265(tt, func(pts, dts int64, au [][]byte) error { return d.onH26x(t, pts, dts, au, true) })
		case *tscodecs.MPEG4Audio:
			if c.SampleRate <= 0 {
				d.ignore(tt.PID, "aac without a sample rate")
				continue
			}
			t := d.add(tt.PID, &codecs.MPEG4Audio{Config: c.Config}, c.SampleRate)
			d.r.OnDataMPEG4Audio(tt, func(pts int64, aus [][]byte) error { return d.onAAC(t, pts, aus) })
		case *tscodecs.Opus:
			ch := opusChannels(c)
			t := d.add(tt.PID, &codecs.Opus{ChannelCount: ch}, 48000)
			d.r.OnDataOpus(tt, func(pts int64, pkts [][]byte) error { return d.onOpus(t, pts, pkts) })
		default:
			d.ignore(tt.PID, codecName(tt.Codec))
		}
	}
	if len(d.tracks) == 0 {
		return ErrNoSupportedTracks
	}
	return nil
}

func opusChannels(c *tscodecs.Opus) int {
	if c.Desc != nil && c.Desc.ChannelCount() > 0 {
		return c.Desc.ChannelCount()
	}
	if c.ChannelCount > 0 { //nolint:staticcheck // older field, still filled
		return c.ChannelCount //nolint:staticcheck
	}
	return 2
}

func codecName(c tscodecs.Codec) string {
	switch c.(type) {
	case *tscodecs.MPEG1Audio:
		return "mp3"
	case *tscodecs.MPEG1Video:
		return "mpeg2video"
	case *tscodecs.MPEG4Video:
		return "mpeg4video"
	case *tscodecs.AC3:
		return "ac3"
	case *tscodecs.EAC3:
		return "eac3"
	case *tscodecs.MPEG4AudioLATM:
		return "aac-latm"
	case *tscodecs.KLV:
		return "klv"
	case *tscodecs.DVBSubtitle:
		return "dvb-subtitle"
	}
	return fmt.Sprintf("%T", c)
}

func (d *Demuxer) add(pid uint16, c codecs.Codec, clockRate int) *Track {
	t := &Track{PID: pid, Codec: c, ClockRate: clockRate}
	d.tracks = append(d.tracks, t)
	return t
}

func (d *Demuxer) ignore(pid uint16, codec string) {
	if d.OnIgnoredTrack != nil {
		d.OnIgnoredTrack(pid, codec)
	}
}

// Tracks returns the supported tracks, in PMT order.
func (d *Demuxer) Tracks() []*Track { return d.tracks }

// Ready reports whether every track's codec is known.
func (d *Demuxer) Ready() bool {
	for _, t := range d.tracks {
		if t.Codec == nil {
			return false
		}
	}
	return true
}

// Read reads and handles the next piece of the input. Errors of OnUnit and
// of the underlying reader are returned; broken data is skipped.
func (d *Demuxer) Read() error { return d.r.Read() }

// times unwraps a 33-bit DTS and PTS into durations from the stream's
// first timestamp. A PTS before its DTS is clamped to the DTS.
func (d *Demuxer) times(pts, dts int64) (time.Duration, time.Duration) {
	udts := d.td.Decode(dts & tsMask)
	diff := (pts - dts) & tsMask
	if diff > tsMask/2 {
		diff = 0
	}
	return stream.FromTicks(udts+diff, 90000), stream.FromTicks(udts, 90000)
}

func (d *Demuxer) onH26x(t *Track, pts, dts int64, au [][]byte, hevc bool) error {
	nalus, vps, sps, pps := stream.SplitParameterSets(au, hevc)
	if vps != nil || sps != nil || pps != nil {
		setH26xParams(t, vps, sps, pps, hevc)
	}
	upts, udts := d.times(pts, dts)
	if len(nalus) == 0 || t.Codec == nil {
		return nil // nothing decodable yet
	}
	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		d.decodeError(fmt.Errorf("video access unit: %w", err))
		return nil
	}
	var key bool
	if hevc {
		key = h265.IsRandomAccess(nalus)
	} else {
		key = h264.IsRandomAccess(nalus)
	}
	return d.OnUnit(Unit{Track: t, Codec: t.Codec, DTS: udts, PTS: upts, Key: key, Payload: payload})
}

// setH26xParams records the parameter sets seen and replaces the track's
// codec when the complete set (H.264: SPS and PPS; H.265: VPS, SPS and PPS)
// differs from the current one.
func setH26xParams(t *Track, vps, sps, pps []byte, hevc bool) {
	if vps != nil {
		t.vps = bytes.Clone(vps)
	}
	if sps != nil {
		t.sps = bytes.Clone(sps)
	}
	if pps != nil {
		t.pps = bytes.Clone(pps)
	}
	if hevc {
		if t.vps == nil || t.sps == nil || t.pps == nil {
			return
		}
		if cur, ok := t.Codec.(*codecs.H265); ok &&
			bytes.Equal(cur.VPS, t.vps) && bytes.Equal(cur.SPS, t.sps) && bytes.Equal(cur.PPS, t.pps) {
			return
		}
		t.Codec = &codecs.H265{VPS: t.vps, SPS: t.sps, PPS: t.pps}
		return
	}
	if t.sps == nil || t.pps == nil {
		return
	}
	if cur, ok := t.Codec.(*codecs.H264); ok && bytes.Equal(cur.SPS, t.sps) && bytes.Equal(cur.PPS, t.pps) {
		return
	}
	t.Codec = &codecs.H264{SPS: t.sps, PPS: t.pps}
}

func (d *Demuxer) onAAC(t *Track, pts int64, aus [][]byte) error {
	upts, _ := d.times(pts, pts)
	c := t.Codec.(*codecs.MPEG4Audio)
	frame := 1024
	if c.Config.FrameLengthFlag {
		frame = 960
	}
	for i, au := range aus {
		if len(au) == 0 {
			continue
		}
		ts := upts + time.Duration(int64(i)*int64(frame)*int64(time.Second)/int64(t.ClockRate))
		if err := d.OnUnit(Unit{Track: t, Codec: t.Codec, DTS: ts, PTS: ts, Key: true, Payload: au}); err != nil {
			return err
		}
	}
	return nil
}

func (d *Demuxer) onOpus(t *Track, pts int64, pkts [][]byte) error {
	ts, _ := d.times(pts, pts)
	for _, p := range pkts {
		if len(p) == 0 {
			continue
		}
		if err := d.OnUnit(Unit{Track: t, Codec: t.Codec, DTS: ts, PTS: ts, Key: true, Payload: p}); err != nil {
			return err
		}
		ts += stream.FromTicks(opus.PacketDuration2(p), 48000)
	}
	return nil
}

func (d *Demuxer) decodeError(err error) {
	if d.OnDecodeError != nil {
		d.OnDecodeError(err)
	}
}
