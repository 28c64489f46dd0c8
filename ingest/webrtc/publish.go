package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// pliInterval is how often a publisher is asked for a keyframe while one
// is awaited.
const pliInterval = 500 * time.Millisecond

// Publish runs a WHIP session: it authorises the publisher of name with
// key (the bearer token) from remoteAddr, answers offer, and publishes
// what arrives into the hub. It returns the SDP answer and the session id.
func (s *Server) Publish(ctx context.Context, name, key, remoteAddr string, query url.Values, offer []byte) (answer []byte, id string, err error) {
	app, err := s.Auth.AuthorizePublish(name, key, remoteIP(remoteAddr))
	if err != nil {
		status := http.StatusUnauthorized
		switch {
		case errors.Is(err, stream.ErrInvalidName):
			status = http.StatusBadRequest
		case errors.Is(err, auth.ErrUnknownApp):
			status = http.StatusNotFound
		}
		s.log.Warn("whip publish refused", "stream", name, "remote", remoteAddr, "reason", err.Error())
		return nil, "", &StatusError{Status: status, Err: fmt.Errorf("%w %s: %w", ErrUnauthorized, name, err)}
	}
	if !app.Takeover {
		if st, err := s.Hub.Get(name); err == nil && st.State() == stream.StateLive {
			return nil, "", statusErr(http.StatusConflict, ErrConflict, "%s", name)
		}
	}
	params := app.Params(query)
	if s.Admit != nil {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		params, err = s.Admit(actx, auth.PublishRequest{Name: name, Protocol: Protocol, RemoteAddr: remoteAddr, App: app, Params: params})
		cancel()
		if err != nil {
			s.log.Warn("whip publish refused", "stream", name, "remote", remoteAddr, "reason", err.Error())
			return nil, "", statusErr(http.StatusForbidden, ErrForbidden, "publish %s: %v", name, err)
		}
	}
	if err := checkOffer(offer); err != nil {
		return nil, "", err
	}

	pc, err := s.whipAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("whip %s: %w", name, err)
	}
	ps := &publishSession{
		s:      s,
		name:   name,
		app:    app,
		params: params,
		remote: remoteAddr,
		pc:     pc,
		opts:   stream.PublishOptions{Protocol: Protocol, RemoteAddr: remoteAddr, Takeover: app.Takeover},
		log:    s.log.With("stream", name, "remote", remoteAddr),
		failed: make(chan error, 1),
	}
	sdpAnswer, err := negotiate(ctx, pc, string(offer), func() error { return preferH264(pc) })
	if err == nil {
		err = ps.expectTracks(sdpAnswer)
	}
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	ss := &session{id: newSessionID(), kind: "whip", name: name, remote: remoteAddr, pc: pc}
	ps.log = ps.log.With("session", ss.id[:8])
	pc.OnTrack(ps.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ps.log.Debug("whip connection state", "state", st.String())
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			ps.fail(fmt.Errorf("connection %s", st))
		}
	})
	if err := s.register(ss, ps.run); err != nil {
		pc.Close()
		return nil, "", err
	}
	ps.log.Info("whip session started", "video", ps.wantVideo, "audio", ps.wantAudio)
	return []byte(sdpAnswer), ss.id, nil
}

// checkOffer refuses what is not an SDP offer before pion sees it.
func checkOffer(offer []byte) error {
	if len(bytes.TrimSpace(offer)) == 0 {
		return statusErr(http.StatusBadRequest, ErrBadOffer, "empty body")
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(offer)); err != nil {
		return statusErr(http.StatusBadRequest, ErrBadOffer, "%v", err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return statusErr(http.StatusBadRequest, ErrBadOffer, "no media sections")
	}
	return nil
}

// publishSession turns one WHIP peer connection's RTP into hub access units.
type publishSession struct {
	s      *Server
	name   string
	app    auth.App
	params url.Values
	remote string
	pc     *webrtc.PeerConnection
	opts   stream.PublishOptions
	log    *slog.Logger
	failed chan error

	wantVideo, wantAudio bool

	mu        sync.Mutex
	video     *videoIn
	audio     *audioIn
	pub       *stream.Publisher
	published bool
	startWall time.Duration // timeline origin, in the clock the tracks share
	useSR     bool          // offsets come from sender reports
	bytesIn   int
}

// clock maps a track's RTP timestamps to time: through its last RTCP
// sender report when there is one, else through the arrival of its first
// packet.
type clock struct {
	rate      int64
	first     bool
	firstRTP  int64 // unwrapped
	firstWall time.Duration
	lastRTP   uint32
	unwrapped int64
	srRTP     int64
	srNTP     time.Duration
	hasSR     bool
	base      int64         // RTP time of the track's timeline start
	offset    time.Duration // where base sits on the session timeline
	based     bool
}

// unwrap extends a 32-bit RTP timestamp.
func (c *clock) unwrap(ts uint32) int64 {
	if !c.first {
		c.first = true
		c.lastRTP = ts
		c.unwrapped = int64(ts)
		return c.unwrapped
	}
	c.unwrapped += int64(int32(ts - c.lastRTP))
	c.lastRTP = ts
	return c.unwrapped
}

func (c *clock) wall(rtpTime int64, useSR bool) time.Duration {
	if useSR && c.hasSR {
		return c.srNTP + stream.FromTicks(rtpTime-c.srRTP, uint32(c.rate))
	}
	return c.firstWall + stream.FromTicks(rtpTime-c.firstRTP, uint32(c.rate))
}

type videoIn struct {
	ssrc   uint32
	clk    clock
	dep    h264Depacketizer
	vp8    *vp8In   // set when the publisher sends VP8, transcoded to H.264
	frames *frameIn // set when the publisher sends VP9 or AV1, passed through
	sps    []byte
	pps    []byte
	track  *stream.Track
	waitKy bool
	lastPL time.Time
	// lastKey is when the last keyframe arrived: browsers send one only
	// when asked, and segments can only be cut on them.
	lastKey time.Time
}

type audioIn struct {
	clk   clock
	track *stream.Track
}

// expectTracks reads the answer's accepted media sections.
func (ps *publishSession) expectTracks(answer string) error {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return fmt.Errorf("whip %s: answer: %w", ps.name, err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue
		}
		if _, ok := m.Attribute("inactive"); ok {
			continue
		}
		if _, ok := m.Attribute("sendonly"); ok {
			continue // we would send: not a publisher's track
		}
		switch m.MediaName.Media {
		case "video":
			ps.wantVideo = true
		case "audio":
			ps.wantAudio = true
		}
	}
	if !ps.wantVideo && !ps.wantAudio {
		return statusErr(http.StatusBadRequest, ErrNoSupportedTracks, "publish %s", ps.name)
	}
	return nil
}

func (ps *publishSession) fail(err error) {
	select {
	case ps.failed <- err:
	default:
	}
}

// run waits for the session to end: DELETE or server close (ctx), a
// failed connection, a kick, or no media in time.
func (ps *publishSession) run(ctx context.Context) {
	timer := time.NewTimer(ps.s.ConnectTimeout)
	defer timer.Stop()
	pli := time.NewTicker(pliInterval)
	defer pli.Stop()
	var reason error
	var done <-chan struct{}
loop:
	for {
		select {
		case <-ctx.Done():
			reason = nil
			break loop
		case err := <-ps.failed:
			reason = err
			break loop
		case <-done:
			ps.mu.Lock()
			cur := ps.pub
			ps.mu.Unlock()
			if cur == nil {
				done = nil // closed by a change of codec parameters; the next one comes
				continue
			}
			if cur.Done() != done {
				done = cur.Done()
				continue
			}
			reason = cur.Err()
			break loop
		case <-timer.C:
			if !ps.isPublished() {
				reason = errors.New("no keyframe or media in time")
				break loop
			}
		case <-pli.C:
			ps.mu.Lock()
			if ps.pub != nil && done == nil {
				done = ps.pub.Done()
			}
			ps.mu.Unlock()
			ps.requestKeyframe(false)
			ps.requestRegularKeyframe()
			ps.countBytes()
		}
	}
	ps.pc.Close()
	ps.closeVP8()
	ps.mu.Lock()
	if ps.pub != nil {
		ps.flushBytesLocked()
		ps.pub.Close(reason)
		ps.pub = nil
	}
	ps.mu.Unlock()
	if reason != nil {
		ps.log.Info("whip session ended", "reason", reason.Error())
	} else {
		ps.log.Info("whip session ended")
	}
}

func (ps *publishSession) isPublished() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.published
}

// keyframeInterval is how often a publisher is asked for a keyframe when
// it sends none by itself (browsers encode one only on request): about a
// segment, so that segments can be cut and new readers start soon.
const keyframeInterval = 2 * time.Second

// requestRegularKeyframe asks for a keyframe when the last one is older
// than keyframeInterval.
func (ps *publishSession) requestRegularKeyframe() {
	ps.mu.Lock()
	v := ps.video
	due := v != nil && ps.pub != nil && !v.waitKy && time.Since(v.lastKey) >= keyframeInterval && time.Since(v.lastPL) >= keyframeInterval
	ps.mu.Unlock()
	if due {
		ps.requestKeyframe(true)
	}
}

// requestKeyframe sends PLI while video waits for a keyframe (or always with force).
func (ps *publishSession) requestKeyframe(force bool) {
	ps.mu.Lock()
	v := ps.video
	var ssrc uint32
	send := false
	if v != nil && (force || v.waitKy) {
		ssrc, send = v.ssrc, true
		v.lastPL = time.Now()
	}
	ps.mu.Unlock()
	if send {
		_ = ps.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
}

func (ps *publishSession) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	codec := tr.Codec()
	mime := strings.ToLower(codec.MimeType)
	ps.log.Info("whip track", "kind", tr.Kind().String(), "codec", mime, "ssrc", uint32(tr.SSRC()))
	go ps.readRTCP(recv)
	switch {
	case tr.Kind() == webrtc.RTPCodecTypeVideo && mime == strings.ToLower(webrtc.MimeTypeH264):
		ps.mu.Lock()
		if ps.video != nil {
			ps.mu.Unlock()
			return
		}
		ps.video = &videoIn{ssrc: uint32(tr.SSRC()), clk: clock{rate: 90000}, waitKy: true}
		ps.mu.Unlock()
		ps.requestKeyframe(true)
		go ps.readVideo(tr)
	case tr.Kind() == webrtc.RTPCodecTypeVideo && mime == strings.ToLower(webrtc.MimeTypeVP8) && ps.s.VP8FFmpeg != "":
		ps.mu.Lock()
		if ps.video != nil {
			ps.mu.Unlock()
			return
		}
		ps.video = &videoIn{ssrc: uint32(tr.SSRC()), clk: clock{rate: 90000}, waitKy: true, vp8: &vp8In{waitIDR: true}}
		ps.mu.Unlock()
		ps.requestKeyframe(true)
		go ps.readVideo(tr)
	case tr.Kind() == webrtc.RTPCodecTypeVideo && newFrameIn(mime) != nil:
		ps.mu.Lock()
		if ps.video != nil {
			ps.mu.Unlock()
			return
		}
		ps.video = &videoIn{ssrc: uint32(tr.SSRC()), clk: clock{rate: 90000}, waitKy: true, frames: newFrameIn(mime)}
		ps.mu.Unlock()
		ps.requestKeyframe(true)
		go ps.readVideo(tr)
	case tr.Kind() == webrtc.RTPCodecTypeAudio && mime == strings.ToLower(webrtc.MimeTypeOpus):
		ps.mu.Lock()
		if ps.audio != nil {
			ps.mu.Unlock()
			return
		}
		channels := 2
		if codec.Channels == 1 {
			channels = 1
		}
		ps.audio = &audioIn{clk: clock{rate: 48000}, track: &stream.Track{Codec: &codecs.Opus{ChannelCount: channels}, ClockRate: 48000}}
		ps.mu.Unlock()
		go ps.readAudio(tr)
	default:
		ps.log.Warn("whip track ignored: unsupported codec", "codec", mime)
		go io.Copy(io.Discard, readerOf(tr))
	}
}

// readerOf drains a track so that its buffers do not fill.
func readerOf(tr *webrtc.TrackRemote) io.Reader {
	return readerFunc(func(b []byte) (int, error) {
		n, _, err := tr.Read(b)
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// readRTCP reads the sender reports of a receiver.
func (ps *publishSession) readRTCP(recv *webrtc.RTPReceiver) {
	for {
		pkts, _, err := recv.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				ps.onSenderReport(sr)
			}
		}
	}
}

func (ps *publishSession) onSenderReport(sr *rtcp.SenderReport) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var c *clock
	if ps.video != nil && ps.video.ssrc == sr.SSRC {
		c = &ps.video.clk
	} else if ps.audio != nil {
		c = &ps.audio.clk
	}
	if c == nil || !c.first {
		return
	}
	// Unwrap the report's timestamp near the last packet's.
	c.srRTP = c.unwrapped + int64(int32(sr.RTPTime-c.lastRTP))
	c.srNTP = ntpToDuration(sr.NTPTime)
	c.hasSR = true
}

// ntpToDuration converts a 64-bit NTP time to a duration since 1900.
func ntpToDuration(ntp uint64) time.Duration {
	sec := ntp >> 32
	frac := ntp & 0xffffffff
	return time.Duration(sec)*time.Second + time.Duration((frac*uint64(time.Second))>>32)
}

var monoStart = time.Now()

func now() time.Duration { return time.Since(monoStart) }

func (ps *publishSession) readVideo(tr *webrtc.TrackRemote) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if len(pkt.Payload) == 0 {
			ps.onVideoPadding(pkt.SequenceNumber)
			continue // padding, sent while the browser probes bandwidth
		}
		ps.mu.Lock()
		v := ps.video
		ps.bytesIn += len(pkt.Payload)
		rtpTime := v.clk.unwrap(pkt.Timestamp)
		if v.clk.firstWall == 0 && v.clk.firstRTP == 0 {
			v.clk.firstRTP, v.clk.firstWall = rtpTime, now()
		}
		if v.vp8 != nil || v.frames != nil {
			var pli bool
			if v.vp8 != nil {
				pli = ps.onVP8Packet(v, pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload)
			} else {
				pli = ps.onFramePacket(v, pkt, rtpTime)
			}
			ps.mu.Unlock()
			if pli {
				ps.requestKeyframe(true)
			}
			continue
		}
		nalus, auTS, derr := v.dep.push(pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload)
		pli := false
		if derr != nil {
			if !v.waitKy {
				ps.log.Debug("whip video damaged: waiting for a keyframe", "error", derr.Error())
			}
			v.waitKy = true
			pli = time.Since(v.lastPL) > pliInterval/2
		}
		if nalus != nil {
			t := v.clk.unwrapped + int64(int32(auTS-v.clk.lastRTP))
			ps.onVideoAU(nalus, t)
		}
		ps.mu.Unlock()
		if pli {
			ps.requestKeyframe(true)
		}
	}
}

// onVideoAU handles one H.264 access unit at unwrapped RTP time t. Called with ps.mu held.
func (ps *publishSession) onVideoAU(au [][]byte, t int64) {
	v := ps.video
	nalus, _, sps, pps := stream.SplitParameterSets(au, false)
	if sps != nil {
		v.sps = append([]byte(nil), sps...)
	}
	if pps != nil {
		v.pps = append([]byte(nil), pps...)
	}
	if len(nalus) == 0 {
		return
	}
	wait := &v.waitKy
	if v.vp8 != nil {
		wait = &v.vp8.waitIDR // v.waitKy is about the VP8 input
	}
	if v.sps == nil || v.pps == nil {
		*wait = true
		return
	}
	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		return
	}
	ps.onVideoFrame(&codecs.H264{SPS: v.sps, PPS: v.pps}, h264.IsRandomAccess(nalus), payload, t, wait)
}

// onFramePacket handles one VP9 or AV1 RTP packet at unwrapped RTP time
// rtpTime. Called with ps.mu held; it returns whether to ask for a keyframe.
func (ps *publishSession) onFramePacket(v *videoIn, pkt *rtp.Packet, rtpTime int64) (pli bool) {
	c, key, payload, err := v.frames.push(pkt)
	if err != nil {
		if !v.waitKy {
			ps.log.Debug("whip video damaged: waiting for a keyframe", "error", err.Error())
		}
		v.waitKy = true
		pli = time.Since(v.lastPL) > pliInterval/2
	}
	if payload != nil {
		ps.onVideoFrame(c, key, payload, rtpTime, &v.waitKy)
	}
	return pli
}

// onVideoFrame publishes one video access unit with codec parameters c at
// unwrapped RTP time t, once a keyframe came (*wait is cleared by it).
// New parameters (a resolution change) start a new hub session at a
// keyframe. Called with ps.mu held.
func (ps *publishSession) onVideoFrame(c codecs.Codec, key bool, payload []byte, t int64, wait *bool) {
	v := ps.video
	if key {
		v.lastKey = time.Now()
	}
	if *wait {
		if !key {
			return
		}
		*wait = false
	}
	if v.track != nil && !reflect.DeepEqual(v.track.Codec, c) {
		if !key {
			return
		}
		ps.log.Info("whip codec parameters changed, starting a new session", "codec", stream.CodecName(c))
		if ps.pub != nil {
			ps.flushBytesLocked()
			ps.pub.Close(errors.New("codec parameters changed"))
			ps.pub = nil
		}
		v.track = nil
		v.clk.based = false
		if ps.audio != nil {
			ps.audio.clk.based = false
		}
	}
	if v.track == nil {
		v.track = &stream.Track{Codec: c, ClockRate: 90000}
	}
	if ps.pub == nil {
		if !ps.start(t) {
			return
		}
	}
	if !v.clk.based {
		return
	}
	pts := v.clk.offset + stream.FromTicks(t-v.clk.base, 90000)
	if pts < 0 {
		return
	}
	ps.pub.WriteUnit(&stream.AccessUnit{Track: v.track, DTS: pts, PTS: pts, Key: key, Payload: payload})
}

// start publishes into the hub once every expected track is known. t is
// the RTP time of the video keyframe (or of the first audio packet when
// there is no video). Called with ps.mu held.
func (ps *publishSession) start(t int64) bool {
	if ps.wantVideo && (ps.video == nil || ps.video.track == nil) {
		return false
	}
	if ps.wantAudio && ps.audio == nil && ps.wantVideo {
		// Audio has not sent anything yet: publish without waiting for it
		// only if it stays silent; browsers send audio at once.
		if ps.video == nil || now()-ps.video.clk.firstWall < 2*time.Second {
			return false
		}
	}
	var tracks []*stream.Track
	if ps.video != nil && ps.video.track != nil {
		tracks = append(tracks, ps.video.track)
	}
	if ps.audio != nil {
		tracks = append(tracks, ps.audio.track)
	}
	if len(tracks) == 0 {
		return false
	}
	// The timeline: sender reports give the tracks a common clock when
	// every track has one; otherwise arrival times do.
	ps.useSR = true
	for _, c := range ps.clocks() {
		if !c.hasSR {
			ps.useSR = false
		}
	}
	var ref *clock
	if ps.video != nil {
		ref = &ps.video.clk
	} else {
		ref = &ps.audio.clk
	}
	ps.startWall = ref.wall(t, ps.useSR)
	for _, c := range ps.clocks() {
		c.base = c.unwrapped
		if c == ref {
			c.base = t
		}
		c.offset = c.wall(c.base, ps.useSR) - ps.startWall
		c.based = true
	}
	pub, err := ps.s.Hub.Publish(ps.name, tracks, ps.opts)
	if err != nil {
		ps.log.Warn("whip publish refused by the hub", "error", err.Error())
		ps.fail(err)
		return false
	}
	ps.pub = pub
	if !ps.published {
		ps.published = true
		ps.log.Info("whip publishing", "session", pub.Session().ID, "tracks", len(tracks), "sender_reports", ps.useSR,
			"params", ps.params.Encode())
		if fn := ps.s.OnPublish; fn != nil {
			// OnPublish may take a while (it starts ladders): not under ps.mu.
			info := auth.PublishInfo{Name: ps.name, App: ps.app, Params: ps.params, Protocol: Protocol, RemoteAddr: ps.remote, Publisher: pub}
			ps.mu.Unlock()
			fn(info)
			ps.mu.Lock()
		}
	}
	return ps.pub != nil
}

func (ps *publishSession) clocks() []*clock {
	var out []*clock
	if ps.video != nil && ps.video.clk.first {
		out = append(out, &ps.video.clk)
	}
	if ps.audio != nil && ps.audio.clk.first {
		out = append(out, &ps.audio.clk)
	}
	return out
}

func (ps *publishSession) readAudio(tr *webrtc.TrackRemote) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if len(pkt.Payload) == 0 {
			continue
		}
		ps.mu.Lock()
		a := ps.audio
		ps.bytesIn += len(pkt.Payload)
		t := a.clk.unwrap(pkt.Timestamp)
		if !a.clk.based && a.clk.firstWall == 0 && a.clk.firstRTP == 0 {
			a.clk.firstRTP, a.clk.firstWall = t, now()
		}
		if ps.pub == nil && !ps.wantVideo {
			ps.start(t)
		}
		if ps.pub != nil && a.clk.based {
			pts := a.clk.offset + stream.FromTicks(t-a.clk.base, 48000)
			if pts >= 0 {
				ps.pub.WriteUnit(&stream.AccessUnit{Track: a.track, DTS: pts, PTS: pts, Key: true,
					Payload: append([]byte(nil), pkt.Payload...)})
			}
		}
		ps.mu.Unlock()
	}
}

func (ps *publishSession) countBytes() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.flushBytesLocked()
}

func (ps *publishSession) flushBytesLocked() {
	if ps.pub != nil && ps.bytesIn > 0 {
		ps.pub.AddBytesIn(ps.bytesIn)
		ps.bytesIn = 0
	}
}
