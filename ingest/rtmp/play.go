package rtmp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

// errNewSession ends an RTMP player when its stream gets a new publishing
// session: RTMP cannot announce new tracks, and the player reconnects.
var errNewSession = errors.New("publisher started a new session")

// play serves a hub stream to an RTMP player. The player gets a hub reader
// with its own bounded queue: when it falls behind, the hub drops it and
// the connection ends; it never slows the publisher or other readers.
func (c *conn) play(name string) error {
	if c.s.DisablePlay {
		c.sendStatusAndLinger("NetStream.Play.Failed", "playing over RTMP is disabled")
		return fmt.Errorf("rtmp play %s: refused: play is disabled", name)
	}
	if err := stream.ValidateName(name); err != nil {
		c.sendStatusAndLinger("NetStream.Play.StreamNotFound", "invalid stream name")
		return fmt.Errorf("rtmp play: %w", err)
	}
	st, err := c.s.Hub.Get(name)
	if err != nil {
		c.sendStatusAndLinger("NetStream.Play.StreamNotFound", "stream not found")
		return fmt.Errorf("rtmp play: %w", err)
	}
	rd, err := st.NewReader(Protocol, c.remote)
	if err != nil {
		c.sendStatusAndLinger("NetStream.Play.StreamNotFound", "stream not found")
		return fmt.Errorf("rtmp play: %w", err)
	}
	defer rd.Close()

	ctx, cancel := context.WithCancel(c.s.ctx)
	defer cancel()

	// The player sends little (acknowledgements); read and drop it, and
	// notice when the player goes away.
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			if _, err := c.nc.Read(buf); err != nil {
				cancel()
				return
			}
		}
	}()
	defer func() {
		c.nc.Close()
		<-readDone
	}()

	// The first item is the session (its tracks), unless the stream has
	// none yet: then wait for one, bounded.
	waitCtx, waitCancel := context.WithTimeout(ctx, c.s.ReadTimeout)
	it, err := rd.Read(waitCtx)
	waitCancel()
	if err != nil {
		return fmt.Errorf("rtmp play %s: waiting for the publisher: %w", name, err)
	}
	if it.Session == nil {
		return fmt.Errorf("rtmp play %s: stream did not start with a session", name)
	}

	out := make(map[*stream.Track]*gortmplib.Track)
	var tracks []*gortmplib.Track
	for _, t := range it.Session.Tracks {
		if rt := toRTMPTrack(t); rt != nil {
			out[t] = rt
			tracks = append(tracks, rt)
		}
	}
	if len(tracks) == 0 {
		c.sendStatusAndLinger("NetStream.Play.Failed", "no track can be sent over RTMP")
		return fmt.Errorf("rtmp play %s: no track can be sent over RTMP", name)
	}

	w := &gortmplib.Writer{Conn: c.sc, Tracks: tracks}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.WriteTimeout)); err != nil {
		return err
	}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("rtmp play %s: %w", name, err)
	}
	c.log.Info("rtmp playing", "stream", name, "session", it.Session.ID, "reader", rd.Info().ID)

	var base time.Duration
	baseSet := false
	var sent uint64
	started := make(map[*stream.Track]bool) // video tracks that had their first keyframe
	for {
		it, err := rd.Read(ctx)
		if err != nil {
			return fmt.Errorf("rtmp play %s: %w", name, err)
		}
		if it.Session != nil {
			return fmt.Errorf("rtmp play %s: %w", name, errNewSession)
		}
		rt := out[it.AU.Track]
		if rt == nil {
			continue
		}
		if it.AU.Track.IsVideo() && !started[it.AU.Track] {
			if !it.AU.Key {
				continue // the player could not decode it
			}
			started[it.AU.Track] = true
		}
		if !baseSet {
			base, baseSet = it.AU.DTS, true
		}
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.WriteTimeout)); err != nil {
			return err
		}
		if err := writeUnit(w, rt, it.AU, max(it.AU.PTS-base, 0), max(it.AU.DTS-base, 0)); err != nil {
			return fmt.Errorf("rtmp play %s: %w", name, err)
		}
		if n := c.sc.BytesSent(); n > sent {
			st.AddBytesOut(int(n - sent))
			sent = n
		}
	}
}

// toRTMPTrack maps a hub track to a gortmplib track, or nil when RTMP
// cannot carry its codec.
func toRTMPTrack(t *stream.Track) *gortmplib.Track {
	switch c := t.Codec.(type) {
	case *codecs.H264:
		return &gortmplib.Track{Codec: &rtmpcodecs.H264{SPS: c.SPS, PPS: c.PPS}}
	case *codecs.H265:
		return &gortmplib.Track{Codec: &rtmpcodecs.H265{VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}}
	case *codecs.AV1:
		return &gortmplib.Track{Codec: &rtmpcodecs.AV1{}}
	case *codecs.VP9:
		return &gortmplib.Track{Codec: &rtmpcodecs.VP9{}}
	case *codecs.MPEG4Audio:
		cfg := c.Config
		return &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: &cfg}}
	case *codecs.Opus:
		return &gortmplib.Track{Codec: &rtmpcodecs.Opus{IDHeader: &opus.IDHeader{
			Version:         1,
			ChannelCount:    uint8(c.ChannelCount),
			PreSkip:         312,
			InputSampleRate: 48000,
		}}}
	}
	return nil
}

// writeUnit converts an access unit back from MP4 sample form.
func writeUnit(w *gortmplib.Writer, rt *gortmplib.Track, au *stream.AccessUnit, pts, dts time.Duration) error {
	switch rt.Codec.(type) {
	case *rtmpcodecs.H264, *rtmpcodecs.H265:
		var nalus h264.AVCC
		if err := nalus.Unmarshal(au.Payload); err != nil {
			return fmt.Errorf("video access unit: %w", err)
		}
		if _, ok := rt.Codec.(*rtmpcodecs.H264); ok {
			return w.WriteH264(rt, pts, dts, nalus)
		}
		return w.WriteH265(rt, pts, dts, nalus)
	case *rtmpcodecs.AV1:
		var tu av1.Bitstream
		if err := tu.Unmarshal(au.Payload); err != nil {
			return fmt.Errorf("AV1 temporal unit: %w", err)
		}
		return w.WriteAV1(rt, pts, tu)
	case *rtmpcodecs.VP9:
		return w.WriteVP9(rt, pts, au.Payload)
	case *rtmpcodecs.MPEG4Audio:
		return w.WriteMPEG4Audio(rt, pts, au.Payload)
	case *rtmpcodecs.Opus:
		return w.WriteOpus(rt, pts, au.Payload)
	}
	return nil
}
