package packager

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// testMedia is real encoded media, made by ffmpeg at test time, split into
// access units the way an ingest would hand them to the hub.
type testMedia struct {
	video  *stream.Track
	audio  *stream.Track
	frames [][]byte // AVCC access units, one per 1/fps
	keys   []bool
	aus    [][]byte // AAC frames of 1024 samples at 48 kHz
	fps    int
}

func requireFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
}

func makeTestMedia(t testing.TB, seconds int) *testMedia {
	t.Helper()
	return makeSizedMedia(t, seconds, "320x240", "-g", "30")
}

// makeSizedMedia is makeTestMedia at another size, with keyframes as the
// x264 options in keyArgs place them.
func makeSizedMedia(t testing.TB, seconds int, size string, keyArgs ...string) *testMedia {
	t.Helper()
	requireFFmpeg(t)
	const fps = 30
	dur := time.Duration(seconds) * time.Second
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30",
		"-t", dur.String(), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"}
	args = append(args, keyArgs...)
	args = append(args, "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", "-")
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("encode video: %v", err)
	}
	nalus := testutil.SplitAnnexB(out)
	m := &testMedia{fps: fps}
	var sps, pps []byte
	var au [][]byte
	flush := func() {
		if len(au) == 0 {
			return
		}
		b, err := h264.AVCC(au).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m.frames = append(m.frames, b)
		m.keys = append(m.keys, h264.IsRandomAccess(au))
		au = nil
	}
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			flush()
			continue
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
		au = append(au, n)
	}
	flush()
	m.video = &stream.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}, ClockRate: 90000}

	out, err = exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", dur.String(), "-c:a", "aac", "-ac", "2", "-f", "adts", "-").Output()
	if err != nil {
		t.Fatalf("encode audio: %v", err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(out); err != nil {
		t.Fatalf("parse adts: %v", err)
	}
	for _, p := range pkts {
		m.aus = append(m.aus, p.AU)
	}
	m.audio = &stream.Track{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2,
	}}, ClockRate: 48000}
	if !bytes.Equal(sps, m.video.Codec.(*codecs.H264).SPS) || len(m.frames) == 0 || len(m.aus) == 0 {
		t.Fatal("no media")
	}
	return m
}

// publish writes the media into p in timestamp order, interleaving audio
// and video as an encoder would. With pace, it runs in real time.
func (m *testMedia) publish(t testing.TB, p *stream.Publisher, tracks []*stream.Track, pace bool, from time.Duration) {
	t.Helper()
	m.publishPart(t, p, tracks, pace, from, 0)
}

// publishPart is publish leaving out the media before skip, as a publisher
// that joins mid-stream does.
func (m *testMedia) publishPart(t testing.TB, p *stream.Publisher, tracks []*stream.Track, pace bool, from, skip time.Duration) {
	t.Helper()
	var video, audio *stream.Track
	for _, tr := range tracks {
		if tr.IsVideo() {
			video = tr
		} else {
			audio = tr
		}
	}
	start := time.Now()
	vi, ai := 0, 0
	for vi < len(m.frames) || ai < len(m.aus) {
		vt := time.Duration(vi) * time.Second / time.Duration(m.fps)
		at := time.Duration(ai) * 1024 * time.Second / 48000
		useVideo := video != nil && vi < len(m.frames) && (audio == nil || ai >= len(m.aus) || vt <= at)
		var au *stream.AccessUnit
		if useVideo {
			au = &stream.AccessUnit{Track: video, DTS: vt + from, PTS: vt + from, Key: m.keys[vi], Payload: m.frames[vi]}
			vi++
		} else if audio != nil && ai < len(m.aus) {
			au = &stream.AccessUnit{Track: audio, DTS: at + from, PTS: at + from, Key: true, Payload: m.aus[ai]}
			ai++
		} else {
			break
		}
		if au.DTS-from < skip {
			continue
		}
		if pace {
			if d := time.Until(start.Add(au.DTS - from - skip)); d > 0 {
				select {
				case <-time.After(d):
				case <-p.Done():
					return
				}
			}
		}
		p.WriteUnit(au)
	}
}
