package transcoder

import (
	"bufio"
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

// errBadUnit marks an access unit that could not be muxed; it is skipped.
var errBadUnit = errors.New("access unit cannot be muxed")

// tsMask keeps the 33 bits of an MPEG-TS timestamp.
const tsMask = 1<<33 - 1

// toTicks converts a session-relative time into 90 kHz ticks (rounded),
// with inputBase added. It is not masked to 33 bits.
func toTicks(d time.Duration) int64 {
	return (int64(d+inputBase)*9 + 50000) / 100000
}

// fromTicks converts 90 kHz ticks (inputBase included) back into a
// session-relative time. For times that came from toTicks, and for any
// time in whole milliseconds or whole 90 kHz ticks, it gives back exactly
// the original.
func fromTicks(t int64) time.Duration {
	return time.Duration(t*100000/9) - inputBase
}

// tsInput muxes a source session's access units into the MPEG-TS that
// feeds the child: Annex-B video with the parameter sets before every
// keyframe, ADTS AAC or Opus, timestamps shifted by inputBase.
type tsInput struct {
	bw     *bufio.Writer
	w      *mpegts.Writer
	video  *stream.Track
	audio  *stream.Track
	vt, at *mpegts.Track
	hevc   bool
	params [][]byte // VPS, SPS, PPS as the track has them

	// After a reattach the reader starts again at the cached GOP, which
	// overlaps what was written: skip video up to a later keyframe and
	// audio up to a later frame.
	waitKey bool
	last    [2]time.Duration
	hasLast [2]bool
}

func newTSInput(w io.Writer, video, audio *stream.Track) (*tsInput, error) {
	in := &tsInput{bw: bufio.NewWriterSize(w, 64<<10), video: video, audio: audio}
	switch c := video.Codec.(type) {
	case *codecs.H264:
		in.vt = &mpegts.Track{Codec: &tscodecs.H264{}}
		in.params = nonEmpty(c.SPS, c.PPS)
	case *codecs.H265:
		in.vt = &mpegts.Track{Codec: &tscodecs.H265{}}
		in.params = nonEmpty(c.VPS, c.SPS, c.PPS)
		in.hevc = true
	default:
		return nil, fmt.Errorf("%w: %s video", ErrUnsupportedSource, video.CodecName())
	}
	tracks := []*mpegts.Track{in.vt}
	if audio != nil {
		switch c := audio.Codec.(type) {
		case *codecs.MPEG4Audio:
			in.at = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: c.Config}}
		case *codecs.Opus:
			in.at = &mpegts.Track{Codec: &tscodecs.Opus{ChannelCount: max(c.ChannelCount, 1)}} //nolint:staticcheck // the writer takes it
		default:
			return nil, fmt.Errorf("%w: %s audio", ErrUnsupportedSource, audio.CodecName())
		}
		tracks = append(tracks, in.at)
	}
	in.w = &mpegts.Writer{W: in.bw, Tracks: tracks}
	if err := in.w.Initialize(); err != nil {
		return nil, err
	}
	return in, nil
}

func nonEmpty(bs ...[]byte) [][]byte {
	var out [][]byte
	for _, b := range bs {
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// resume makes the input skip what it already wrote, after the hub reader
// was attached again.
func (in *tsInput) resume() { in.waitKey = true }

// write muxes one access unit and flushes it to the child. Units of other
// tracks are ignored; errBadUnit reports a unit that was skipped; any other
// error comes from writing to the child.
func (in *tsInput) write(au *stream.AccessUnit) error {
	switch au.Track {
	case in.video:
		return in.writeVideo(au)
	case in.audio:
		if in.audio == nil {
			return nil
		}
		return in.writeAudio(au)
	}
	return nil
}

func (in *tsInput) writeVideo(au *stream.AccessUnit) error {
	if in.waitKey {
		if !au.Key || (in.hasLast[0] && au.DTS <= in.last[0]) {
			return nil
		}
		in.waitKey = false
	}
	if in.hasLast[0] && au.DTS <= in.last[0] {
		return nil
	}
	var avcc h264.AVCC
	if err := avcc.Unmarshal(au.Payload); err != nil || len(avcc) == 0 {
		return fmt.Errorf("%w: %v", errBadUnit, err)
	}
	nalus := [][]byte(avcc)
	if au.Key && len(in.params) > 0 {
		nalus = append(append(make([][]byte, 0, len(in.params)+len(avcc)), in.params...), avcc...)
	}
	for _, n := range nalus {
		if len(n) == 0 {
			return fmt.Errorf("%w: empty NAL unit", errBadUnit)
		}
	}
	pts, dts := toTicks(au.PTS)&tsMask, toTicks(au.DTS)&tsMask
	var err error
	if in.hevc {
		err = in.w.WriteH265(in.vt, pts, dts, nalus)
	} else {
		err = in.w.WriteH264(in.vt, pts, dts, nalus)
	}
	if err != nil {
		return err
	}
	in.last[0], in.hasLast[0] = au.DTS, true
	return in.bw.Flush()
}

func (in *tsInput) writeAudio(au *stream.AccessUnit) error {
	if in.waitKey || !in.hasLast[0] {
		// Audio starts after the first video keyframe, so the stream opens
		// on a keyframe that carries the PCR.
		return nil
	}
	if in.hasLast[1] && au.DTS <= in.last[1] {
		return nil
	}
	if len(au.Payload) == 0 {
		return fmt.Errorf("%w: empty audio frame", errBadUnit)
	}
	pts := toTicks(au.PTS) & tsMask
	var err error
	switch in.at.Codec.(type) {
	case *tscodecs.MPEG4Audio:
		if len(au.Payload) > 8191-7 {
			return fmt.Errorf("%w: AAC frame too large for ADTS", errBadUnit)
		}
		err = in.w.WriteMPEG4Audio(in.at, pts, [][]byte{au.Payload})
	case *tscodecs.Opus:
		err = in.w.WriteOpus(in.at, pts, [][]byte{au.Payload})
	}
	if err != nil {
		return err
	}
	in.last[1], in.hasLast[1] = au.DTS, true
	return in.bw.Flush()
}
