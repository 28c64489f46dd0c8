package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// trackDetectTime is how much longer than ReadTimeout the publisher gets to
// send its first media: gortmplib reads 2 s of media to find the tracks.
const trackDetectTime = 5 * time.Second

// maxPending bounds the access units held while a video track waits for the
// frame that tells its parameters (an AV1 sequence header, a VP9 keyframe).
const maxPending = 1024

var (
	errNoSupportedTracks = errors.New("no supported tracks")
	errCodecChanged      = errors.New("codec parameters changed")
	errServerClosed      = errors.New("rtmp server closed")
)

// publishSession converts one RTMP publisher's data into hub access units.
// All of it runs on the connection's goroutine (gortmplib calls back from
// Reader.Read).
type publishSession struct {
	c      *conn
	name   string
	app    auth.App
	params url.Values
	opts   stream.PublishOptions
	tracks []*inTrack

	pub       *stream.Publisher
	stopWatch func()
	published bool // OnPublish was called
	pending   []*pendingUnit
	base      time.Duration
	baseSet   bool
	bytesSeen uint64
	err       error // first error met inside a callback
}

// inTrack is one supported incoming track.
type inTrack struct {
	// codec is nil until known: AV1 waits for a sequence header, VP9 for a keyframe.
	codec     codecs.Codec
	clockRate int
	st        *stream.Track // the track of the current hub session
}

type pendingUnit struct {
	t  *inTrack
	au *stream.AccessUnit
}

func (c *conn) publish(name, key string, query url.Values) (err error) {
	app, err := c.s.Auth.AuthorizePublish(name, key, c.remoteIP())
	if err != nil {
		return c.refusePublish(name, err)
	}
	// Refuse a second publisher before telling it to start sending.
	if !app.Takeover {
		if st, err := c.s.Hub.Get(name); err == nil && st.State() == stream.StateLive {
			return c.refusePublish(name, fmt.Errorf("publish %s: %w", name, stream.ErrAlreadyPublishing))
		}
	}

	params := app.Params(query)
	if c.s.Admit != nil {
		ctx, cancel := context.WithTimeout(c.s.ctx, c.s.ReadTimeout)
		params, err = c.s.Admit(ctx, auth.PublishRequest{Name: name, Protocol: Protocol, RemoteAddr: c.remote, App: app, Params: params})
		cancel()
		if err != nil {
			return c.refusePublish(name, fmt.Errorf("publish %s: %w", name, err))
		}
	}

	ps := &publishSession{
		c:      c,
		name:   name,
		app:    app,
		params: params,
		opts:   stream.PublishOptions{Protocol: Protocol, RemoteAddr: c.remote, Takeover: app.Takeover},
	}
	defer func() {
		reason := err
		switch {
		case errors.Is(err, io.EOF):
			reason = nil // the encoder hung up: a normal end
		case c.s.ctx.Err() != nil:
			reason = errServerClosed
		}
		ps.stopPublisher(reason)
	}()

	if err := c.nc.SetDeadline(time.Now().Add(c.s.ReadTimeout + trackDetectTime)); err != nil {
		return err
	}
	r := &gortmplib.Reader{Conn: c.sc}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("rtmp publish %s: reading tracks: %w", name, err)
	}
	if err := ps.setupTracks(r); err != nil {
		return c.refusePublish(name, err)
	}

	for {
		if err := c.nc.SetDeadline(time.Now().Add(c.s.ReadTimeout)); err != nil {
			return err
		}
		if err := r.Read(); err != nil {
			if ps.pub != nil {
				if reason := ps.pub.Err(); reason != nil {
					// The hub closed Done (kick, takeover) and the watcher closed the socket.
					return fmt.Errorf("rtmp publish %s: %w", name, reason)
				}
			}
			return fmt.Errorf("rtmp publish %s: %w", name, err)
		}
		if ps.err != nil {
			if !ps.published {
				return c.refusePublish(name, ps.err)
			}
			return fmt.Errorf("rtmp publish %s: %w", name, ps.err)
		}
		ps.countBytes()
	}
}

// setupTracks registers a callback for every track gortmplib found.
func (ps *publishSession) setupTracks(r *gortmplib.Reader) error {
	for _, rt := range r.Tracks() {
		switch rc := rt.Codec.(type) {
		case *rtmpcodecs.H264:
			t := ps.addTrack(&codecs.H264{SPS: rc.SPS, PPS: rc.PPS}, 90000)
			r.OnDataH264(rt, func(pts, dts time.Duration, au [][]byte) { ps.onH26x(t, pts, dts, au, false) })

		case *rtmpcodecs.H265:
			t := ps.addTrack(&codecs.H265{VPS: rc.VPS, SPS: rc.SPS, PPS: rc.PPS}, 90000)
			r.OnDataH265(rt, func(pts, dts time.Duration, au [][]byte) { ps.onH26x(t, pts, dts, au, true) })

		case *rtmpcodecs.AV1:
			t := ps.addTrack(nil, 90000)
			r.OnDataAV1(rt, func(pts time.Duration, tu [][]byte) { ps.onAV1(t, pts, tu) })

		case *rtmpcodecs.VP9:
			t := ps.addTrack(nil, 90000)
			r.OnDataVP9(rt, func(pts time.Duration, frame []byte) { ps.onVP9(t, pts, frame) })

		case *rtmpcodecs.MPEG4Audio:
			if rc.Config == nil || rc.Config.SampleRate <= 0 {
				return fmt.Errorf("rtmp publish %s: AAC track without a valid AudioSpecificConfig", ps.name)
			}
			t := ps.addTrack(&codecs.MPEG4Audio{Config: *rc.Config}, rc.Config.SampleRate)
			r.OnDataMPEG4Audio(rt, func(pts time.Duration, au []byte) { ps.emit(t, pts, pts, true, au) })

		case *rtmpcodecs.Opus:
			channels := 2
			if rc.IDHeader != nil && rc.IDHeader.ChannelCount > 0 {
				channels = int(rc.IDHeader.ChannelCount)
			}
			t := ps.addTrack(&codecs.Opus{ChannelCount: channels}, 48000)
			r.OnDataOpus(rt, func(pts time.Duration, pkt []byte) { ps.emit(t, pts, pts, true, pkt) })

		// gortmplib calls a callback for every track it found, so the
		// unsupported ones get one that drops their data.
		case *rtmpcodecs.MPEG1Audio:
			ps.ignoreTrack("mp3")
			r.OnDataMPEG1Audio(rt, func(time.Duration, []byte) {})
		case *rtmpcodecs.AC3:
			ps.ignoreTrack("ac3")
			r.OnDataAC3(rt, func(time.Duration, []byte) {})
		case *rtmpcodecs.FLAC:
			ps.ignoreTrack("flac")
			r.OnDataFLAC(rt, func(time.Duration, []byte) {})
		case *rtmpcodecs.G711:
			ps.ignoreTrack("g711")
			r.OnDataG711(rt, func(time.Duration, []byte) {})
		case *rtmpcodecs.LPCM:
			ps.ignoreTrack("lpcm")
			r.OnDataLPCM(rt, func(time.Duration, []byte) {})
		default:
			return fmt.Errorf("rtmp publish %s: unknown codec %T", ps.name, rt.Codec)
		}
	}
	if len(ps.tracks) == 0 {
		return fmt.Errorf("rtmp publish %s: %w", ps.name, errNoSupportedTracks)
	}
	return nil
}

func (ps *publishSession) addTrack(c codecs.Codec, clockRate int) *inTrack {
	t := &inTrack{codec: c, clockRate: clockRate}
	ps.tracks = append(ps.tracks, t)
	return t
}

func (ps *publishSession) ignoreTrack(codec string) {
	ps.c.log.Warn("rtmp track ignored: unsupported codec", "stream", ps.name, "codec", codec)
}

// onH26x handles an H.264 or H.265 access unit. Parameter sets are taken
// out of the payload: they live in the track, and when they change the
// session restarts with new tracks.
func (ps *publishSession) onH26x(t *inTrack, pts, dts time.Duration, au [][]byte, hevc bool) {
	nalus, vps, sps, pps := stream.SplitParameterSets(au, hevc)

	if vps != nil || sps != nil || pps != nil {
		switch cur := t.codec.(type) {
		case *codecs.H264:
			ps.setCodec(t, &codecs.H264{SPS: orElse(sps, cur.SPS), PPS: orElse(pps, cur.PPS)})
		case *codecs.H265:
			ps.setCodec(t, &codecs.H265{VPS: orElse(vps, cur.VPS), SPS: orElse(sps, cur.SPS), PPS: orElse(pps, cur.PPS)})
		}
	}
	if len(nalus) == 0 {
		return
	}

	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		ps.fail(fmt.Errorf("video access unit: %w", err))
		return
	}
	key := false
	if hevc {
		key = h265.IsRandomAccess(nalus)
	} else {
		key = h264.IsRandomAccess(nalus)
	}
	ps.emit(t, pts, dts, key, payload)
}

func orElse(b, def []byte) []byte {
	if b != nil {
		return b
	}
	return def
}

// onAV1 handles an AV1 temporal unit. The track is configured by the first
// sequence header.
func (ps *publishSession) onAV1(t *inTrack, pts time.Duration, tu [][]byte) {
	c, key, payload, err := stream.AV1Unit(tu)
	if err != nil {
		ps.fail(err)
		return
	}
	if c != nil {
		ps.setCodec(t, c)
	}
	if t.codec == nil || payload == nil {
		return // nothing decodable before the first sequence header
	}
	ps.emit(t, pts, pts, key, payload)
}

// onVP9 handles a VP9 frame. Keyframes carry the frame size and color
// configuration that configure the track.
func (ps *publishSession) onVP9(t *inTrack, pts time.Duration, frame []byte) {
	c, key := stream.VP9Frame(frame)
	if c != nil {
		ps.setCodec(t, c)
	}
	if t.codec == nil {
		return
	}
	ps.emit(t, pts, pts, key, frame)
}

// setCodec configures a track. A change in a live session ends that
// session and starts a new one, so that readers see new tracks.
func (ps *publishSession) setCodec(t *inTrack, c codecs.Codec) {
	if t.codec != nil && reflect.DeepEqual(t.codec, c) {
		return
	}
	old := t.codec
	t.codec = c
	if old != nil && ps.pub != nil {
		ps.c.log.Info("rtmp codec parameters changed, starting a new session",
			"stream", ps.name, "codec", stream.CodecName(c))
		ps.stopPublisher(errCodecChanged)
		ps.baseSet = false
	}
}

// emit hands an access unit to the hub, publishing first if needed.
func (ps *publishSession) emit(t *inTrack, pts, dts time.Duration, key bool, payload []byte) {
	if ps.err != nil {
		return
	}
	if !ps.baseSet {
		ps.base, ps.baseSet = dts, true
	}
	au := &stream.AccessUnit{DTS: ps.rel(dts), PTS: ps.rel(pts), Key: key, Payload: payload}

	if ps.pub == nil {
		if !ps.ready() {
			if len(ps.pending) >= maxPending {
				ps.fail(errors.New("a video track sent no sequence header or keyframe"))
				return
			}
			ps.pending = append(ps.pending, &pendingUnit{t: t, au: au})
			return
		}
		if err := ps.start(); err != nil {
			ps.fail(err)
			return
		}
	}
	au.Track = t.st
	ps.pub.WriteUnit(au)
}

// rel makes a timestamp relative to the session start. A unit slightly
// older than the session's first one is clamped to zero.
func (ps *publishSession) rel(d time.Duration) time.Duration {
	return max(d-ps.base, 0)
}

func (ps *publishSession) ready() bool {
	for _, t := range ps.tracks {
		if t.codec == nil {
			return false
		}
	}
	return true
}

// start publishes the tracks into the hub and flushes what was pending.
func (ps *publishSession) start() error {
	tracks := make([]*stream.Track, len(ps.tracks))
	for i, t := range ps.tracks {
		t.st = &stream.Track{Codec: t.codec, ClockRate: t.clockRate}
		tracks[i] = t.st
	}
	pub, err := ps.c.s.Hub.Publish(ps.name, tracks, ps.opts)
	if err != nil {
		return err
	}
	ps.pub = pub
	ps.watch(pub)

	if !ps.published {
		ps.published = true
		ps.c.log.Info("rtmp publishing", "stream", ps.name, "session", pub.Session().ID,
			"tracks", trackSummary(tracks), "params", ps.params.Encode())
		if fn := ps.c.s.OnPublish; fn != nil {
			fn(PublishInfo{Name: ps.name, App: ps.app, Params: ps.params, Protocol: Protocol, RemoteAddr: ps.c.remote, Publisher: pub})
		}
	}
	for _, p := range ps.pending {
		p.au.Track = p.t.st
		pub.WriteUnit(p.au)
	}
	ps.pending = nil
	return nil
}

// watch closes the connection when the hub wants the publisher gone
// (kicked, taken over, hub closed): the blocked read then returns.
func (ps *publishSession) watch(pub *stream.Publisher) {
	nc := ps.c.nc
	ps.stopWatch = pub.WhenDone(func(error) { nc.Close() })
}

func (ps *publishSession) stopPublisher(reason error) {
	if ps.pub == nil {
		return
	}
	ps.stopWatch()
	ps.countBytes()
	ps.pub.Close(reason)
	ps.pub = nil
}

func (ps *publishSession) fail(err error) {
	if ps.err == nil {
		ps.err = err
	}
}

// countBytes adds the bytes received since the last call to the stream's counter.
func (ps *publishSession) countBytes() {
	if ps.pub == nil || ps.c.sc == nil { // a pull (client.go) counts its own bytes
		return
	}
	n := ps.c.sc.BytesReceived()
	if n > ps.bytesSeen {
		ps.pub.AddBytesIn(int(n - ps.bytesSeen))
		ps.bytesSeen = n
	}
}

func trackSummary(tracks []*stream.Track) []string {
	out := make([]string, len(tracks))
	for i, t := range tracks {
		if t.IsVideo() {
			w, h := t.Resolution()
			out[i] = fmt.Sprintf("%s %dx%d", t.CodecName(), w, h)
		} else {
			rate, ch := t.AudioFormat()
			out[i] = fmt.Sprintf("%s %dHz %dch", t.CodecName(), rate, ch)
		}
	}
	return out
}
