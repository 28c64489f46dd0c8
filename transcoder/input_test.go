package transcoder

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/mps-dev/mps/stream"
)

func TestTicks(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 33 * time.Millisecond, time.Second / 30,
		7 * time.Second / 30, 1001 * time.Second / 30000, 36 * time.Hour, 11111 * time.Nanosecond} {
		ticks := toTicks(d)
		if ticks < 0 {
			t.Fatalf("%v: negative ticks", d)
		}
		back := fromTicks(ticks)
		// Exact for whole milliseconds and for frame times at integer
		// rates; within one tick otherwise.
		diff := back - d
		if diff < 0 {
			diff = -diff
		}
		if diff > time.Second/90000 {
			t.Errorf("%v -> %d -> %v", d, ticks, back)
		}
		if (d%time.Millisecond == 0 || d == time.Second/30 || d == 7*time.Second/30) && back != d {
			t.Errorf("%v -> %v, not exact", d, back)
		}
	}
}

func avcc(t *testing.T, nalus ...[]byte) []byte {
	t.Helper()
	b, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTSInput muxes units and demuxes them again: parameter sets come
// before each keyframe, timestamps carry the base, and after resume the
// overlap is skipped.
func TestTSInput(t *testing.T) {
	video := &stream.Track{Codec: &codecs.H264{SPS: spsH264, PPS: ppsH264}, ClockRate: 90000}
	audio := &stream.Track{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2}}, ClockRate: 48000}
	other := &stream.Track{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000}
	var buf bytes.Buffer
	in, err := newTSInput(&buf, video, audio)
	if err != nil {
		t.Fatal(err)
	}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	p := []byte{0x41, 0x9a, 0x02}
	frame := func(i int, key bool) *stream.AccessUnit {
		d := time.Duration(i) * time.Second / 30
		n := p
		if key {
			n = idr
		}
		return &stream.AccessUnit{Track: video, DTS: d, PTS: d, Key: key, Payload: avcc(t, n)}
	}
	aac := func(i int) *stream.AccessUnit {
		d := time.Duration(i) * 1024 * time.Second / 48000
		return &stream.AccessUnit{Track: audio, DTS: d, PTS: d, Key: true, Payload: []byte{0x21, 0x10, 0x04}}
	}
	units := []*stream.AccessUnit{
		aac(0), // before the first keyframe: skipped
		frame(0, true), aac(1), frame(1, false), {Track: other, Payload: []byte{1}}, aac(2), frame(2, false),
	}
	for _, au := range units {
		if err := in.write(au); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.write(&stream.AccessUnit{Track: video, DTS: time.Hour, Payload: []byte{0, 0, 0, 9, 1}}); !errors.Is(err, errBadUnit) {
		t.Errorf("bad AVCC: %v", err)
	}
	// Attached again: the cached GOP comes again, then new frames; video
	// resumes at the next keyframe, as frames were lost in between.
	in.resume()
	for _, au := range []*stream.AccessUnit{frame(0, true), aac(1), frame(1, false), frame(2, false), aac(2), frame(3, false), frame(30, true), aac(60), frame(31, false)} {
		if err := in.write(au); err != nil {
			t.Fatal(err)
		}
	}

	r := &mpegts.Reader{R: &buf}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var vdts, adts []int64
	var keys int
	for _, tr := range r.Tracks() {
		switch tr.Codec.(type) {
		case *mpegtsH264:
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				vdts = append(vdts, dts)
				if h264.IsRandomAccess(au) {
					keys++
					if len(au) < 3 || !bytes.Equal(au[0], spsH264) || !bytes.Equal(au[1], ppsH264) {
						t.Errorf("keyframe without SPS/PPS: %x", au)
					}
				}
				return nil
			})
		case *mpegtsAAC:
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				adts = append(adts, pts)
				return nil
			})
		}
	}
	for r.Read() == nil {
	}
	wantV := []int64{toTicks(0), toTicks(time.Second / 30), toTicks(2 * time.Second / 30),
		toTicks(time.Second), toTicks(31 * time.Second / 30)}
	if len(vdts) != len(wantV) || keys != 2 {
		t.Fatalf("video DTS %v (keys %d), want %v", vdts, keys, wantV)
	}
	for i := range wantV {
		if vdts[i] != wantV[i] {
			t.Errorf("video DTS %v, want %v", vdts, wantV)
		}
	}
	if len(adts) != 3 || adts[0] != toTicks(1024*time.Second/48000) || adts[2] != toTicks(60*1024*time.Second/48000) {
		t.Errorf("audio PTS %v", adts)
	}
	if vdts[0] != int64(inputBase/time.Millisecond)*90 {
		t.Errorf("first DTS %d lacks the base", vdts[0])
	}
}

type (
	mpegtsH264 = tscodecs.H264
	mpegtsAAC  = tscodecs.MPEG4Audio
)
