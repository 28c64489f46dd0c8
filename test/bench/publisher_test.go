//go:build bench

package bench

// A Go RTMP publisher: it sends the pre-encoded test media's access units
// (demuxed once from the FLV file) through gortmplib in real time, in a
// loop, and can report the wall-clock time at which each video frame is
// written. Many of them run in one process for the ingest benchmark.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// unit is one access unit of the source, timestamps from the source start.
// FLV timestamps are whole milliseconds, as RTMP sends them.
type unit struct {
	video bool
	dts   time.Duration
	pts   time.Duration
	au    [][]byte // video NAL units
	frame []byte   // one AAC frame
}

// source is the test media in memory, in the file's (decoding) order.
type source struct {
	units    []unit
	sps, pps []byte
	audio    *mpeg4audio.AudioSpecificConfig
	loop     time.Duration // length of one pass: the video's duration
}

var (
	sourceOnce sync.Once
	sourceVal  *source
	sourceErr  error
)

// testSource loads the test media's access units once.
func testSource(tb testing.TB) *source {
	tb.Helper()
	m := testMedia(tb)
	sourceOnce.Do(func() { sourceVal, sourceErr = loadFLV(m.FLV) })
	if sourceErr != nil {
		tb.Fatal(sourceErr)
	}
	return sourceVal
}

// loadFLV demuxes an FLV file of H.264 and AAC.
func loadFLV(path string) (*source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, fmt.Errorf("%s: not an FLV file", path)
	}
	src := &source{}
	var lastVideo, frameDur time.Duration
	nVideo := 0
	for p := int(binary.BigEndian.Uint32(b[5:9])) + 4; p+11 <= len(b); {
		typ := b[p]
		size := int(b[p+1])<<16 | int(b[p+2])<<8 | int(b[p+3])
		ts := time.Duration(int64(b[p+7])<<24|int64(b[p+4])<<16|int64(b[p+5])<<8|int64(b[p+6])) * time.Millisecond
		if p+11+size > len(b) {
			break // a truncated last tag
		}
		data := b[p+11 : p+11+size]
		p += 11 + size + 4
		switch {
		case typ == 9 && len(data) >= 5 && data[0]&0x0f == 7: // AVC
			cts := time.Duration(int32(uint32(data[2])<<16|uint32(data[3])<<8|uint32(data[4]))<<8>>8) * time.Millisecond
			switch data[1] {
			case 0:
				if src.sps, src.pps, err = parseAVCConfig(data[5:]); err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
			case 1:
				var au h264.AVCC
				if err := au.Unmarshal(data[5:]); err != nil {
					return nil, fmt.Errorf("%s: video at %v: %w", path, ts, err)
				}
				if nVideo > 0 {
					frameDur = ts - lastVideo
				}
				lastVideo = ts
				nVideo++
				src.units = append(src.units, unit{video: true, dts: ts, pts: ts + cts, au: au})
			}
		case typ == 8 && len(data) >= 2 && data[0]>>4 == 10: // AAC
			switch data[1] {
			case 0:
				src.audio = &mpeg4audio.AudioSpecificConfig{}
				if err := src.audio.Unmarshal(data[2:]); err != nil {
					return nil, fmt.Errorf("%s: AudioSpecificConfig: %w", path, err)
				}
			case 1:
				src.units = append(src.units, unit{dts: ts, pts: ts, frame: data[2:]})
			}
		}
	}
	if src.sps == nil || src.audio == nil || nVideo < 2 {
		return nil, fmt.Errorf("%s: want H.264 with a decoder configuration and AAC", path)
	}
	// Start on the first video keyframe, at timestamp 0: the server's
	// timeline then equals the publisher's.
	for len(src.units) > 0 && !(src.units[0].video && h264.IsRandomAccess(src.units[0].au)) {
		src.units = src.units[1:]
	}
	if len(src.units) == 0 {
		return nil, fmt.Errorf("%s: no video keyframe", path)
	}
	t0 := src.units[0].dts
	src.loop = lastVideo + frameDur - t0
	kept := src.units[:0]
	for _, u := range src.units {
		u.dts -= t0
		u.pts -= t0
		// Audio past the video's end would overlap the next pass.
		if u.video || u.dts >= 0 && u.dts < src.loop {
			kept = append(kept, u)
		}
	}
	src.units = kept
	return src, nil
}

// parseAVCConfig returns the first SPS and PPS of an
// AVCDecoderConfigurationRecord.
func parseAVCConfig(b []byte) (sps, pps []byte, err error) {
	bad := errors.New("bad AVCDecoderConfigurationRecord")
	if len(b) < 8 || b[4]&3 != 3 {
		return nil, nil, bad // ffmpeg writes 4-byte NAL unit lengths
	}
	p := 6
	for range int(b[5] & 0x1f) {
		if p+2 > len(b) {
			return nil, nil, bad
		}
		n := int(binary.BigEndian.Uint16(b[p:]))
		if p+2+n > len(b) {
			return nil, nil, bad
		}
		if sps == nil {
			sps = b[p+2 : p+2+n]
		}
		p += 2 + n
	}
	if p >= len(b) {
		return nil, nil, bad
	}
	count := int(b[p])
	p++
	for range count {
		if p+2 > len(b) {
			return nil, nil, bad
		}
		n := int(binary.BigEndian.Uint16(b[p:]))
		if p+2+n > len(b) {
			return nil, nil, bad
		}
		if pps == nil {
			pps = b[p+2 : p+2+n]
		}
		p += 2 + n
	}
	if sps == nil || pps == nil {
		return nil, nil, bad
	}
	return sps, pps, nil
}

// publisher sends the source to one RTMP URL in real time until its
// context ends.
type publisher struct {
	URL string
	Src *source
	// OnVideo, if set, is called just before each video frame is written,
	// with its DTS on the stream's timeline.
	OnVideo func(dts time.Duration, at time.Time)
	Frames  atomic.Int64 // units written
}

// run connects and publishes until ctx ends; it returns the first error.
func (p *publisher) run(ctx context.Context) error {
	u, err := url.Parse(p.URL)
	if err != nil {
		return err
	}
	c := &gortmplib.Client{URL: u, Publish: true}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.Initialize(ictx)
	cancel()
	if err != nil {
		return fmt.Errorf("rtmp connect %s: %w", p.URL, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close) // unblocks a write
	defer stop()

	video := &gortmplib.Track{Codec: &rtmpcodecs.H264{SPS: p.Src.sps, PPS: p.Src.pps}}
	audio := &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: p.Src.audio}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("rtmp publish %s: %w", p.URL, err)
	}

	start := time.Now()
	for pass := 0; ; pass++ {
		offset := time.Duration(pass) * p.Src.loop
		for i := range p.Src.units {
			un := &p.Src.units[i]
			dts := un.dts + offset
			if wait := time.Until(start.Add(dts)); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
			if un.video {
				if p.OnVideo != nil {
					p.OnVideo(dts, time.Now())
				}
				err = w.WriteH264(video, un.pts+offset, dts, un.au)
			} else {
				err = w.WriteMPEG4Audio(audio, dts, un.frame)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("rtmp publish %s: %w", p.URL, err)
			}
			p.Frames.Add(1)
		}
	}
}
