// Package testmedia makes real encoded media at test time with ffmpeg and
// publishes it into a hub the way an ingest would.
package testmedia

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

// Media is real encoded media, made by ffmpeg at test time, split into
// access units the way an ingest would hand them to the hub.
type Media struct {
	Video  *stream.Track
	Audio  *stream.Track
	Frames [][]byte // AVCC access units, one per 1/FPS
	Keys   []bool
	AUs    [][]byte // AAC frames of 1024 samples at 48 kHz
	FPS    int
}

// MakeMedia encodes seconds of 320x240 30 fps H.264 (a keyframe every
// second) and 48 kHz stereo AAC with ffmpeg.
func MakeMedia(t testing.TB, seconds int) *Media {
	t.Helper()
	return MakeSizedMedia(t, seconds, "320x240", "-g", "30")
}

// MakeSizedMedia is MakeMedia at another size, with keyframes as the
// x264 options in keyArgs place them.
func MakeSizedMedia(t testing.TB, seconds int, size string, keyArgs ...string) *Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
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
	m := &Media{FPS: fps}
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
		m.Frames = append(m.Frames, b)
		m.Keys = append(m.Keys, h264.IsRandomAccess(au))
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
	m.Video = &stream.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}, ClockRate: 90000}

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
		m.AUs = append(m.AUs, p.AU)
	}
	m.Audio = &stream.Track{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2,
	}}, ClockRate: 48000}
	if !bytes.Equal(sps, m.Video.Codec.(*codecs.H264).SPS) || len(m.Frames) == 0 || len(m.AUs) == 0 {
		t.Fatal("no media")
	}
	return m
}

// Publish writes the media into p in timestamp order, interleaving audio
// and video as an encoder would. With pace, it runs in real time.
func (m *Media) Publish(t testing.TB, p *stream.Publisher, tracks []*stream.Track, pace bool, from time.Duration) {
	t.Helper()
	m.PublishPart(t, p, tracks, pace, from, 0)
}

// PublishPart is Publish leaving out the media before skip, as a publisher
// that joins mid-stream does.
func (m *Media) PublishPart(t testing.TB, p *stream.Publisher, tracks []*stream.Track, pace bool, from, skip time.Duration) {
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
	for vi < len(m.Frames) || ai < len(m.AUs) {
		vt := time.Duration(vi) * time.Second / time.Duration(m.FPS)
		at := time.Duration(ai) * 1024 * time.Second / 48000
		useVideo := video != nil && vi < len(m.Frames) && (audio == nil || ai >= len(m.AUs) || vt <= at)
		var au *stream.AccessUnit
		if useVideo {
			au = &stream.AccessUnit{Track: video, DTS: vt + from, PTS: vt + from, Key: m.Keys[vi], Payload: m.Frames[vi]}
			vi++
		} else if audio != nil && ai < len(m.AUs) {
			au = &stream.AccessUnit{Track: audio, DTS: at + from, PTS: at + from, Key: true, Payload: m.AUs[ai]}
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
