package rtsp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// maxPending bounds the access units held while a track waits for the
// parameter sets that the SDP did not carry.
const maxPending = 1024

var (
	errNoSupportedTracks = errors.New("no supported tracks")
	errCodecChanged      = errors.New("codec parameters changed")
	errServerClosed      = errors.New("rtsp server closed")
	errNoParams          = errors.New("a video track sent no parameter sets")
)

// publishSession converts one RTSP publisher's RTP packets into hub access
// units. Packet callbacks come from the connection's goroutine (TCP) or the
// UDP listener's, so everything is guarded by mu.
type publishSession struct {
	s       *Server
	c       *connState
	session *gortsplib.ServerSession
	// kill closes the RTSP session (session.Close, which only cancels it).
	kill   func()
	name   string
	app    auth.App
	params url.Values
	opts   stream.PublishOptions
	tracks []*inTrack

	mu         sync.Mutex
	pub        *stream.Publisher
	stopWatch  func()
	published  bool // OnPublish was called
	closed     bool
	pending    []*pendingUnit
	base       time.Duration
	baseSet    bool
	bytesIn    int // received and not yet counted
	decodeErr  int
	lossEvents int
	lost       uint64
	err        error // first fatal error met in a packet callback
}

// inTrack is one supported incoming media.
type inTrack struct {
	medi  *description.Media
	forma format.Format
	// codec is nil until known: H.264 and H.265 wait for parameter sets
	// when the SDP has none.
	codec     codecs.Codec
	clockRate int
	st        *stream.Track // the track of the current hub session

	h264Dec *rtph264.Decoder
	h265Dec *rtph265.Decoder
	aacDec  *rtpmpeg4audio.Decoder
	opusDec *rtpsimpleaudio.Decoder
	h264DTS *h264.DTSExtractor
	h265DTS *h265.DTSExtractor
	gotKey  bool // a video track had its first random access unit
}

type pendingUnit struct {
	t  *inTrack
	au *stream.AccessUnit
}

// announce handles ANNOUNCE: the publisher is authorised, admitted and its
// tracks are read from the SDP. The hub session starts at RECORD, or at the
// first parameter sets when the SDP has none.
func (s *Server) announce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	c := conn(ctx.Conn)
	name, key, query, err := parseTarget(ctx.Path, ctx.Query)
	if err != nil {
		return s.refusePublish(c, ctx.Path, err)
	}
	app, err := s.Auth.AuthorizePublish(name, key, remoteIP(ctx.Conn))
	if err != nil {
		return s.refusePublish(c, name, err)
	}
	if !app.Takeover {
		if st, err := s.Hub.Get(name); err == nil && st.State() == stream.StateLive {
			return s.refusePublish(c, name, fmt.Errorf("publish %s: %w", name, stream.ErrAlreadyPublishing))
		}
	}
	params := app.Params(query)
	if s.Admit != nil {
		actx, cancel := context.WithTimeout(context.Background(), s.ReadTimeout)
		params, err = s.Admit(actx, auth.PublishRequest{Name: name, Protocol: Protocol, RemoteAddr: c.remote, App: app, Params: params})
		cancel()
		if err != nil {
			return s.refusePublish(c, name, fmt.Errorf("publish %s: %w", name, err))
		}
	}

	ps := &publishSession{
		s:       s,
		c:       c,
		session: ctx.Session,
		kill:    ctx.Session.Close,
		name:    name,
		app:     app,
		params:  params,
		opts:    stream.PublishOptions{Protocol: Protocol, RemoteAddr: c.remote, Takeover: app.Takeover},
	}
	if err := ps.setupTracks(ctx.Description); err != nil {
		return s.refusePublish(c, name, err)
	}
	ctx.Session.SetUserData(ps)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// refusePublish logs one line for the refusal and returns the response
// that tells the client why.
func (s *Server) refusePublish(c *connState, name string, err error) (*base.Response, error) {
	status, reason := refusalStatus(err)
	c.log.Warn("publish refused", "stream", name, "reason", reason, "error", err.Error())
	return &base.Response{StatusCode: status}, fmt.Errorf("rtsp publish %s: refused: %w", name, err)
}

// setupTracks picks, for every announced media, the first format MPS
// supports. Medias without one are ignored with a warning.
func (ps *publishSession) setupTracks(desc *description.Session) error {
	if desc == nil {
		return fmt.Errorf("rtsp publish %s: no session description", ps.name)
	}
	for _, medi := range desc.Medias {
		var t *inTrack
		for _, f := range medi.Formats {
			if t = newInTrack(medi, f); t != nil {
				break
			}
		}
		if t == nil {
			names := make([]string, len(medi.Formats))
			for i, f := range medi.Formats {
				names[i] = f.Codec()
			}
			ps.c.log.Warn("rtsp track ignored: unsupported codec", "stream", ps.name, "codecs", names)
			continue
		}
		ps.tracks = append(ps.tracks, t)
	}
	if len(ps.tracks) == 0 {
		return fmt.Errorf("rtsp publish %s: %w", ps.name, errNoSupportedTracks)
	}
	return nil
}

// newInTrack returns the incoming track for a format, or nil when the
// format is not supported.
func newInTrack(medi *description.Media, f format.Format) *inTrack {
	t := &inTrack{medi: medi, forma: f, clockRate: f.ClockRate()}
	var err error
	switch f := f.(type) {
	case *format.H264:
		sps, pps := f.SafeParams()
		t.codec = stream.H26xCodec(false, nil, sps, pps)
		t.h264Dec, err = f.CreateDecoder()
		t.h264DTS = h264.NewDTSExtractor()
	case *format.H265:
		vps, sps, pps := f.SafeParams()
		t.codec = stream.H26xCodec(true, vps, sps, pps)
		t.h265Dec, err = f.CreateDecoder()
		t.h265DTS = h265.NewDTSExtractor()
	case *format.MPEG4Audio:
		if f.Config == nil || f.Config.SampleRate <= 0 || f.SizeLength <= 0 {
			return nil
		}
		t.codec = &codecs.MPEG4Audio{Config: *f.Config}
		t.clockRate = f.Config.SampleRate
		t.aacDec, err = f.CreateDecoder()
	case *format.Opus:
		t.codec = &codecs.Opus{ChannelCount: max(f.ChannelCount, 1)}
		t.clockRate = 48000
		t.opusDec, err = f.CreateDecoder()
	default:
		return nil
	}
	if err != nil || t.clockRate <= 0 {
		return nil
	}
	return t
}

// record handles RECORD: packets start to flow.
func (ps *publishSession) record() (*base.Response, error) {
	for _, t := range ps.tracks {
		ps.session.OnPacketRTP(t.medi, t.forma, func(pkt *rtp.Packet) { ps.onPacket(t, pkt) })
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// With every codec known from the SDP, the hub session starts now, on
	// the session's goroutine, rather than in a packet callback.
	if ps.ready() {
		if err := ps.start(); err != nil {
			ps.closed = true
			return ps.s.refusePublish(ps.c, ps.name, err)
		}
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// onPacket decodes one RTP packet of t.
func (ps *publishSession) onPacket(t *inTrack, pkt *rtp.Packet) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	defer func() {
		// A bug in a depacketizer must cost one session, not the server.
		if r := recover(); r != nil {
			ps.c.log.Error("rtsp packet panic", "stream", ps.name, "panic", fmt.Sprint(r))
			ps.fail(fmt.Errorf("internal error: %v", r))
		}
	}()
	if ps.closed {
		return
	}
	ps.bytesIn += pkt.MarshalSize()
	if ps.err != nil {
		return
	}
	pts, ok := ps.session.PacketPTS(t.medi, pkt)
	if !ok {
		return
	}
	ps.handlePacket(t, pkt, pts)
	ps.flushBytes()
}

// handlePacket depacketizes pkt, whose timestamp is pts in t's clock rate
// since the RTSP session started. Called with mu held.
func (ps *publishSession) handlePacket(t *inTrack, pkt *rtp.Packet, pts int64) {
	switch {
	case t.h264Dec != nil:
		au, err := t.h264Dec.Decode(pkt)
		if err != nil {
			ps.decodeFailed(err, rtph264.ErrMorePacketsNeeded, rtph264.ErrNonStartingPacketAndNoPrevious)
			return
		}
		ps.onH26x(t, pts, au, false)
	case t.h265Dec != nil:
		au, err := t.h265Dec.Decode(pkt)
		if err != nil {
			ps.decodeFailed(err, rtph265.ErrMorePacketsNeeded, rtph265.ErrNonStartingPacketAndNoPrevious)
			return
		}
		ps.onH26x(t, pts, au, true)
	case t.aacDec != nil:
		aus, err := t.aacDec.Decode(pkt)
		if err != nil {
			ps.decodeFailed(err, rtpmpeg4audio.ErrMorePacketsNeeded)
			return
		}
		for i, au := range aus {
			ts := ps.ticks(t, pts+int64(i)*mpeg4audio.SamplesPerAccessUnit)
			ps.emit(t, ts, ts, true, au)
		}
	case t.opusDec != nil:
		frame, err := t.opusDec.Decode(pkt)
		if err != nil {
			ps.decodeFailed(err)
			return
		}
		ts := ps.ticks(t, pts)
		ps.emit(t, ts, ts, true, frame)
	}
}

// decodeFailed counts a depacketizer error, unless it is one of the
// expected ones (a fragment that waits for the rest of its frame).
func (ps *publishSession) decodeFailed(err error, expected ...error) {
	for _, e := range expected {
		if errors.Is(err, e) {
			return
		}
	}
	ps.decodeErr++
	if ps.decodeErr&(ps.decodeErr-1) == 0 { // 1, 2, 4, 8...: bounded log volume
		ps.c.log.Debug("rtsp depacketizer error", "stream", ps.name, "error", err.Error(), "count", ps.decodeErr)
	}
}

// decodeError is called by gortsplib for malformed RTP/RTCP packets.
func (ps *publishSession) decodeError(err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.decodeFailed(err)
}

// packetsLost is called by gortsplib when sequence numbers skip.
func (ps *publishSession) packetsLost(n uint64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.lossEvents++
	ps.lost += n
	if ps.lossEvents&(ps.lossEvents-1) == 0 { // 1, 2, 4, 8...: bounded log volume
		ps.c.log.Debug("rtsp packets lost", "stream", ps.name, "lost_total", ps.lost, "events", ps.lossEvents)
	}
}

// ticks converts a timestamp in t's clock rate to a duration.
func (ps *publishSession) ticks(t *inTrack, v int64) time.Duration {
	cr := int64(t.clockRate)
	return time.Duration(v/cr)*time.Second + time.Duration((v%cr)*int64(time.Second)/cr)
}

// onH26x handles an H.264 or H.265 access unit. Parameter sets are taken
// out of the payload: they live in the track, and when they change the
// hub session restarts with new tracks.
func (ps *publishSession) onH26x(t *inTrack, pts int64, au [][]byte, hevc bool) {
	nalus, vps, sps, pps := stream.SplitParameterSets(au, hevc)
	if vps != nil || sps != nil || pps != nil {
		if c := stream.MergeParameterSets(t.codec, hevc, vps, sps, pps); c != nil {
			ps.setCodec(t, c)
		}
	}
	if len(nalus) == 0 || t.codec == nil {
		return
	}
	var key bool
	if hevc {
		key = h265.IsRandomAccess(nalus)
	} else {
		key = h264.IsRandomAccess(nalus)
	}
	if !t.gotKey {
		if !key {
			return // not decodable before the first random access unit
		}
		t.gotKey = true
	}

	// The DTS extractor reads the SPS of the access unit: give it the
	// track's parameter sets with every random access unit.
	forDTS := nalus
	if key {
		switch c := t.codec.(type) {
		case *codecs.H264:
			forDTS = append([][]byte{c.SPS, c.PPS}, nalus...)
		case *codecs.H265:
			forDTS = append([][]byte{c.VPS, c.SPS, c.PPS}, nalus...)
		}
	}
	var dts int64
	var err error
	if hevc {
		dts, err = t.h265DTS.Extract(forDTS, pts)
	} else {
		dts, err = t.h264DTS.Extract(forDTS, pts)
	}
	if err != nil {
		ps.decodeFailed(fmt.Errorf("DTS: %w", err))
		if key {
			return
		}
		// Without a DTS the stream cannot go on until the next keyframe.
		t.gotKey = false
		return
	}

	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		ps.fail(fmt.Errorf("video access unit: %w", err))
		return
	}
	ps.emit(t, ps.ticks(t, pts), ps.ticks(t, dts), key, payload)
}

// setCodec configures a track. A change in a live session ends that hub
// session and starts a new one, so that readers see new tracks.
func (ps *publishSession) setCodec(t *inTrack, c codecs.Codec) {
	if t.codec != nil && reflect.DeepEqual(t.codec, c) {
		return
	}
	old := t.codec
	t.codec = c
	if old != nil && ps.pub != nil {
		ps.c.log.Info("rtsp codec parameters changed, starting a new session",
			"stream", ps.name, "codec", stream.CodecName(c))
		ps.stopPublisher(errCodecChanged)
		ps.baseSet = false
		for _, t := range ps.tracks {
			// Start the new session on a keyframe of every video track.
			t.gotKey = false
		}
	}
}

// emit hands an access unit to the hub, publishing first if needed.
func (ps *publishSession) emit(t *inTrack, pts, dts time.Duration, key bool, payload []byte) {
	if ps.err != nil || len(payload) == 0 {
		return
	}
	if !ps.baseSet {
		ps.base, ps.baseSet = dts, true
	}
	au := &stream.AccessUnit{DTS: max(dts-ps.base, 0), PTS: max(pts-ps.base, 0), Key: key, Payload: payload}
	if ps.pub == nil {
		if !ps.ready() {
			if len(ps.pending) >= maxPending {
				ps.fail(errNoParams)
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

func (ps *publishSession) ready() bool {
	for _, t := range ps.tracks {
		if t.codec == nil {
			return false
		}
	}
	return true
}

// start publishes the tracks into the hub and flushes what was pending.
// Called with mu held.
func (ps *publishSession) start() error {
	tracks := make([]*stream.Track, len(ps.tracks))
	for i, t := range ps.tracks {
		t.st = &stream.Track{Codec: t.codec, ClockRate: t.clockRate}
		tracks[i] = t.st
	}
	pub, err := ps.s.Hub.Publish(ps.name, tracks, ps.opts)
	if err != nil {
		return err
	}
	ps.pub = pub
	ps.watch(pub)

	if !ps.published {
		ps.published = true
		ps.c.log.Info("rtsp publishing", "stream", ps.name, "session", pub.Session().ID,
			"tracks", trackSummary(tracks), "params", ps.params.Encode())
		if fn := ps.s.OnPublish; fn != nil {
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

// watch closes the RTSP session when the hub wants the publisher gone
// (kicked, taken over, hub closed).
func (ps *publishSession) watch(pub *stream.Publisher) {
	kill := ps.kill
	ps.stopWatch = pub.WhenDone(func(error) { kill() })
}

// stopPublisher ends the current hub session. Called with mu held.
func (ps *publishSession) stopPublisher(reason error) {
	if ps.pub == nil {
		return
	}
	ps.stopWatch()
	ps.flushBytes()
	ps.pub.Close(reason)
	ps.pub = nil
}

// fail records a fatal error and closes the RTSP session.
func (ps *publishSession) fail(err error) {
	if ps.err != nil {
		return
	}
	ps.err = err
	ps.c.log.Warn("rtsp publish failed", "stream", ps.name, "error", err.Error())
	ps.kill() // only cancels the session: safe from a packet callback
}

// flushBytes adds the bytes received since the last call to the stream's counter.
func (ps *publishSession) flushBytes() {
	if ps.pub != nil && ps.bytesIn > 0 {
		ps.pub.AddBytesIn(ps.bytesIn)
		ps.bytesIn = 0
	}
}

// close ends the publisher when the RTSP session closes.
func (ps *publishSession) close(err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed && ps.pub == nil {
		return
	}
	ps.closed = true
	reason := err
	var torn liberrors.ErrServerSessionTornDown
	switch {
	case ps.err != nil:
		reason = ps.err
	case ps.s.isClosing():
		reason = errServerClosed
	case errors.As(err, &torn):
		reason = nil // the encoder said TEARDOWN: a normal end
	}
	if ps.published || ps.pub != nil {
		ps.c.log.Info("rtsp publisher closed", "stream", ps.name, "reason", errText(reason))
	}
	ps.stopPublisher(reason)
	ps.pending = nil
}

func errText(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
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
