package tsdemux

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// muxMedia writes the media's first n video frames and the audio of the
// same time as MPEG-TS, interleaved by time.
func muxMedia(t testing.TB, m *testmedia.Media, offset time.Duration, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	mux := &Muxer{W: &buf, Tracks: []*stream.Track{m.Video, m.Audio}, Offset: offset, ChunkSize: 1316}
	if err := mux.Initialize(); err != nil {
		t.Fatal(err)
	}
	ai := 0
	for vi := 0; vi < n && vi < len(m.Frames); vi++ {
		vt := time.Duration(vi) * time.Second / time.Duration(m.FPS)
		for ai < len(m.AUs) && time.Duration(ai)*1024*time.Second/48000 < vt {
			at := time.Duration(ai) * 1024 * time.Second / 48000
			if err := mux.WriteUnit(&stream.AccessUnit{Track: m.Audio, DTS: at, PTS: at, Key: true, Payload: m.AUs[ai]}); err != nil {
				t.Fatal(err)
			}
			ai++
		}
		if err := mux.WriteUnit(&stream.AccessUnit{Track: m.Video, DTS: vt, PTS: vt, Key: m.Keys[vi], Payload: m.Frames[vi]}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func demuxAll(t testing.TB, ts []byte) (*Demuxer, []Unit) {
	t.Helper()
	var units []Unit
	d := &Demuxer{R: bytes.NewReader(ts), OnUnit: func(u Unit) error { units = append(units, u); return nil }}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	for {
		if err := d.Read(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	return d, units
}

func TestRoundTrip(t *testing.T) {
	m := testmedia.MakeMedia(t, 2)
	// An offset just below 2^33 ticks makes the timestamps wrap mid-stream.
	offset := stream.FromTicks(1<<33-90000/2, 90000)
	ts := muxMedia(t, m, offset, 60)
	d, units := demuxAll(t, ts)

	if len(d.Tracks()) != 2 || !d.Ready() {
		t.Fatalf("tracks %+v ready %v", d.Tracks(), d.Ready())
	}
	vc, ok := d.Tracks()[0].Codec.(*codecs.H264)
	want := m.Video.Codec.(*codecs.H264)
	if !ok || !bytes.Equal(vc.SPS, want.SPS) || !bytes.Equal(vc.PPS, want.PPS) {
		t.Fatalf("video codec %#v", d.Tracks()[0].Codec)
	}
	ac, ok := d.Tracks()[1].Codec.(*codecs.MPEG4Audio)
	if !ok || ac.Config.SampleRate != 48000 || d.Tracks()[1].ClockRate != 48000 {
		t.Fatalf("audio codec %#v", d.Tracks()[1].Codec)
	}

	var video []Unit
	var audio int
	for _, u := range units {
		if u.Track == d.Tracks()[0] {
			video = append(video, u)
			if u.Codec != d.Tracks()[0].Codec {
				t.Fatal("codec changed without new parameter sets")
			}
		} else {
			audio++
		}
	}
	if len(video) != 60 {
		t.Fatalf("%d video units, want 60", len(video))
	}
	if audio < 80 {
		t.Fatalf("%d audio units", audio)
	}
	first := video[0].DTS
	for i, u := range video {
		wantT := time.Duration(i) * time.Second / 30
		if d := u.DTS - first - wantT; d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("frame %d: DTS %s, want %s (wrap not unwrapped?)", i, u.DTS-first, wantT)
		}
		if u.Key != m.Keys[i] {
			t.Fatalf("frame %d: key %v", i, u.Key)
		}
		// Parameter sets are in the track, not in the units.
		var avcc h264.AVCC
		if err := avcc.Unmarshal(u.Payload); err != nil {
			t.Fatal(err)
		}
		for _, n := range avcc {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
				t.Fatalf("frame %d carries NAL type %d", i, n[0]&0x1f)
			}
		}
	}
}

func TestCodecChange(t *testing.T) {
	sps1 := []byte{0x67, 0x42, 0xc0, 0x1e, 0x01}
	sps2 := []byte{0x67, 0x42, 0xc0, 0x1f, 0x02}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	tr := &stream.Track{Codec: &codecs.H264{SPS: sps1, PPS: pps}, ClockRate: 90000}
	var buf bytes.Buffer
	mux := &Muxer{W: &buf, Tracks: []*stream.Track{tr}}
	if err := mux.Initialize(); err != nil {
		t.Fatal(err)
	}
	plain, _ := h264.AVCC{idr}.Marshal()
	// The third unit carries new parameter sets in band (after the ones
	// the muxer adds): the last ones win.
	changed, _ := h264.AVCC{sps2, pps, idr}.Marshal()
	for i, p := range [][]byte{plain, plain, changed, plain} {
		d := time.Duration(i) * time.Second
		if err := mux.WriteUnit(&stream.AccessUnit{Track: tr, DTS: d, PTS: d, Key: true, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	_, units := demuxAll(t, buf.Bytes())
	if len(units) < 3 {
		t.Fatalf("%d units", len(units))
	}
	if units[0].Codec != units[1].Codec || units[1].Codec == units[2].Codec {
		t.Fatal("codec identity should change only with the parameter sets")
	}
	if !bytes.Equal(units[2].Codec.(*codecs.H264).SPS, sps2) {
		t.Fatal("new SPS not taken")
	}
}

func TestNoSupportedTracks(t *testing.T) {
	d := &Demuxer{R: bytes.NewReader(make([]byte, 188*10)), OnUnit: func(Unit) error { return nil }}
	if err := d.Initialize(); err == nil {
		t.Fatal("garbage accepted")
	}
	mux := &Muxer{W: io.Discard, Tracks: []*stream.Track{{Codec: &codecs.VP9{}}}}
	if err := mux.Initialize(); !errors.Is(err, ErrNoSupportedTracks) {
		t.Fatalf("got %v", err)
	}
}

// fuzzSeed is a small synthetic H.264 + AAC transport stream.
func fuzzSeed(tb testing.TB) []byte {
	v := &stream.Track{Codec: &codecs.H264{SPS: []byte{0x67, 0x42, 0xc0, 0x1e, 0x01}, PPS: []byte{0x68, 0xce, 0x3c, 0x80}}, ClockRate: 90000}
	a := &stream.Track{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2}}, ClockRate: 48000}
	var buf bytes.Buffer
	mux := &Muxer{W: &buf, Tracks: []*stream.Track{v, a}}
	if err := mux.Initialize(); err != nil {
		tb.Fatal(err)
	}
	for i := range 4 {
		d := time.Duration(i) * 40 * time.Millisecond
		p, _ := h264.AVCC{{0x65 - byte(min(i, 1)*4), 0x88, 0x84, byte(i)}}.Marshal()
		_ = mux.WriteUnit(&stream.AccessUnit{Track: v, DTS: d, PTS: d + 80*time.Millisecond, Key: i == 0, Payload: p})
		_ = mux.WriteUnit(&stream.AccessUnit{Track: a, DTS: d, PTS: d, Key: true, Payload: []byte{0x21, 0x10, 0x04, byte(i)}})
	}
	return buf.Bytes()
}

// FuzzDemux feeds arbitrary bytes to the demuxer: it may fail, but must
// not panic or loop, and what it gives must be consistent.
func FuzzDemux(f *testing.F) {
	seed := fuzzSeed(f)
	f.Add(seed)
	f.Add(seed[:188*3])
	f.Add(append(append([]byte{}, seed[:188*2]...), bytes.Repeat([]byte{0x47, 0xff}, 200)...))
	f.Add([]byte{0x47})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &Demuxer{R: bytes.NewReader(b), OnUnit: func(u Unit) error {
			if u.Codec == nil || len(u.Payload) == 0 || u.PTS < u.DTS {
				t.Fatalf("bad unit %+v", u)
			}
			return nil
		}}
		if d.Initialize() != nil {
			return
		}
		for range 10000 {
			if d.Read() != nil {
				return
			}
		}
	})
}

// FuzzMux writes arbitrary payloads: the muxer must reject or write them,
// never panic.
func FuzzMux(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0x65, 0x88}, true, int64(0))
	f.Add([]byte{0, 0, 0, 9, 0x65}, true, int64(1e9))
	f.Add([]byte{}, false, int64(-5))
	f.Fuzz(func(t *testing.T, payload []byte, key bool, dts int64) {
		v := &stream.Track{Codec: &codecs.H264{SPS: []byte{0x67, 1}, PPS: []byte{0x68, 1}}, ClockRate: 90000}
		a := &stream.Track{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000}
		mux := &Muxer{W: io.Discard, Tracks: []*stream.Track{v, a}, ChunkSize: 1316}
		if err := mux.Initialize(); err != nil {
			t.Fatal(err)
		}
		d := time.Duration(dts)
		_ = mux.WriteUnit(&stream.AccessUnit{Track: v, DTS: d, PTS: d, Key: key, Payload: payload})
		_ = mux.WriteUnit(&stream.AccessUnit{Track: a, DTS: d, PTS: d, Key: true, Payload: payload})
	})
}
