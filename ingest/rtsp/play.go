package rtsp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
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
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"

	"github.com/mps-dev/mps/stream"
)

// errNewSession ends an RTSP player when its stream gets a new publishing
// session: RTSP cannot announce new tracks, and the player reconnects.
var errNewSession = errors.New("publisher started a new session")

// describe handles DESCRIBE: the SDP of the stream's current session.
func (s *Server) describe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c := conn(ctx.Conn)
	sess, _, res, err := s.findPlayable(c, ctx.Path, ctx.Query)
	if err != nil {
		return res, nil, err
	}
	desc, _ := describe(sess)
	body, err := desc.Marshal()
	if err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, fmt.Errorf("rtsp describe: %w", err)
	}
	return &base.Response{StatusCode: base.StatusOK, Body: body}, nil, nil
}

// findPlayable returns the current session of the stream a player asks
// for, or the response that refuses it.
func (s *Server) findPlayable(c *connState, path, query string) (*stream.Session, *stream.Stream, *base.Response, error) {
	if s.DisablePlay {
		c.log.Info("rtsp play refused: play is disabled", "path", path)
		return nil, nil, &base.Response{StatusCode: base.StatusForbidden}, errors.New("rtsp play: refused: play is disabled")
	}
	name, _, _, err := parseTarget(path, query)
	if err != nil {
		return nil, nil, &base.Response{StatusCode: base.StatusBadRequest}, fmt.Errorf("rtsp play: %w", err)
	}
	st, err := s.Hub.Get(name)
	if err != nil {
		return nil, nil, &base.Response{StatusCode: base.StatusNotFound}, fmt.Errorf("rtsp play: %w", err)
	}
	sess := st.Session()
	if sess == nil || st.State() == stream.StateEnded {
		return nil, nil, &base.Response{StatusCode: base.StatusNotFound}, fmt.Errorf("rtsp play %s: %w", name, stream.ErrNotFound)
	}
	if desc, _ := describe(sess); len(desc.Medias) == 0 {
		return nil, nil, &base.Response{StatusCode: base.StatusUnsupportedMediaType},
			fmt.Errorf("rtsp play %s: no track can be sent over RTSP", name)
	}
	return sess, st, nil, nil
}

// playSession serves one hub stream to one RTSP player. The player gets a
// hub reader with its own bounded queue, and its own gortsplib stream, so
// that it starts on the hub's cached GOP like any other reader.
type playSession struct {
	s       *Server
	c       *connState
	session *gortsplib.ServerSession
	name    string
	st      *stream.Stream
	hubSess *stream.Session
	sstream *gortsplib.ServerStream
	out     map[*stream.Track]*outTrack

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// outTrack packetizes one hub track.
type outTrack struct {
	medi      *description.Media
	codec     codecs.Codec
	clockRate int
	offset    uint32 // random start of the RTP timestamps
	h264Enc   *rtph264.Encoder
	h265Enc   *rtph265.Encoder
	aacEnc    *rtpmpeg4audio.Encoder
	opusEnc   *rtpsimpleaudio.Encoder
}

// setupPlay handles a player's SETUP. The first one creates the session's
// stream from the hub session's tracks; later ones (one per track) reuse it.
func (s *Server) setupPlay(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ps, ok := ctx.Session.UserData().(*playSession); ok {
		return &base.Response{StatusCode: base.StatusOK}, ps.sstream, nil
	}
	c := conn(ctx.Conn)
	sess, st, res, err := s.findPlayable(c, ctx.Path, ctx.Query)
	if err != nil {
		return res, nil, err
	}
	desc, tracks := describe(sess)
	ps := &playSession{
		s:       s,
		c:       c,
		session: ctx.Session,
		name:    st.Name(),
		st:      st,
		hubSess: sess,
		out:     make(map[*stream.Track]*outTrack, len(tracks)),
	}
	for i, t := range tracks {
		ot, err := newOutTrack(desc.Medias[i], t)
		if err != nil {
			return &base.Response{StatusCode: base.StatusInternalServerError}, nil, fmt.Errorf("rtsp play %s: %w", ps.name, err)
		}
		ps.out[t] = ot
	}
	ps.sstream = &gortsplib.ServerStream{Server: s.srv, Desc: desc}
	if err := ps.sstream.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil, fmt.Errorf("rtsp play %s: %w", ps.name, err)
	}
	ctx.Session.SetUserData(ps)
	return &base.Response{StatusCode: base.StatusOK}, ps.sstream, nil
}

func newOutTrack(medi *description.Media, t *stream.Track) (*outTrack, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	ot := &outTrack{medi: medi, codec: t.Codec, clockRate: medi.Formats[0].ClockRate(), offset: binary.BigEndian.Uint32(b[:])}
	var err error
	switch f := medi.Formats[0].(type) {
	case *format.H264:
		ot.h264Enc, err = f.CreateEncoder()
	case *format.H265:
		ot.h265Enc, err = f.CreateEncoder()
	case *format.MPEG4Audio:
		ot.aacEnc, err = f.CreateEncoder()
	case *format.Opus:
		ot.opusEnc, err = f.CreateEncoder()
	default:
		err = fmt.Errorf("no packetizer for %s", f.Codec())
	}
	if ot.clockRate <= 0 {
		return nil, fmt.Errorf("track with a clock rate of %d", ot.clockRate)
	}
	return ot, err
}

// armPlay is called from OnPlay: the packets may flow once gortsplib has
// made the session an active reader of its stream, which happens after
// OnPlay returns, so start waits for the PLAY response (OnResponse).
func (ps *playSession) armPlay() {
	ps.c.mu.Lock()
	ps.c.pendingPlay = ps
	ps.c.mu.Unlock()
}

// start attaches the hub reader and starts sending.
func (ps *playSession) start() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.started || ps.closed {
		return
	}
	ps.started = true
	rd, err := ps.st.NewReader(Protocol, ps.c.remote)
	if err != nil {
		ps.c.log.Info("rtsp play ended", "stream", ps.name, "error", err.Error())
		ps.session.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps.cancel = cancel
	ps.done = make(chan struct{})
	ps.c.log.Info("rtsp playing", "stream", ps.name, "session", ps.hubSess.ID, "reader", rd.Info().ID,
		"transport", transportName(ps.session))
	go func() {
		defer close(ps.done)
		defer rd.Close()
		err := ps.run(ctx, rd)
		if ctx.Err() == nil {
			ps.c.log.Info("rtsp play ended", "stream", ps.name, "reader", rd.Info().ID, "reason", errText(err))
			ps.session.Close()
		}
	}()
}

func transportName(ss *gortsplib.ServerSession) string {
	if tr := ss.Transport(); tr != nil {
		return tr.Protocol.String()
	}
	return ""
}

// run copies the hub reader's access units to the player until the
// player goes, the stream ends or gets a new session.
func (ps *playSession) run(ctx context.Context, rd *stream.Reader) error {
	waitCtx, cancel := context.WithTimeout(ctx, ps.s.ReadTimeout)
	it, err := rd.Read(waitCtx)
	cancel()
	if err != nil {
		return err
	}
	if it.Session != ps.hubSess {
		return errNewSession // the session described is gone
	}
	var base time.Duration
	baseSet := false
	start := time.Now()
	started := make(map[*stream.Track]bool) // video tracks that had their first keyframe
	for {
		it, err := rd.Read(ctx)
		if err != nil {
			return err
		}
		if it.Session != nil {
			return errNewSession
		}
		ot := ps.out[it.AU.Track]
		if ot == nil {
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
		pts := max(it.AU.PTS-base, 0)
		n, err := ps.writeUnit(ot, it.AU, pts, start.Add(pts))
		if err != nil {
			return err
		}
		ps.st.AddBytesOut(n)
	}
}

// writeUnit packetizes an access unit and sends its packets. It returns
// the bytes sent.
func (ps *playSession) writeUnit(ot *outTrack, au *stream.AccessUnit, pts time.Duration, ntp time.Time) (int, error) {
	var pkts []*rtp.Packet
	var err error
	switch {
	case ot.h264Enc != nil, ot.h265Enc != nil:
		var nalus h264.AVCC
		if err := nalus.Unmarshal(au.Payload); err != nil {
			return 0, fmt.Errorf("video access unit: %w", err)
		}
		if au.Key {
			// Parameter sets in-band too, for players that ignore the SDP's.
			switch c := ot.codec.(type) {
			case *codecs.H264:
				nalus = append([][]byte{c.SPS, c.PPS}, nalus...)
			case *codecs.H265:
				nalus = append([][]byte{c.VPS, c.SPS, c.PPS}, nalus...)
			}
		}
		if len(nalus) == 0 {
			return 0, nil
		}
		if ot.h264Enc != nil {
			pkts, err = ot.h264Enc.Encode(nalus)
		} else {
			pkts, err = ot.h265Enc.Encode(nalus)
		}
	case ot.aacEnc != nil:
		if len(au.Payload) == 0 {
			return 0, nil
		}
		pkts, err = ot.aacEnc.Encode([][]byte{au.Payload})
	case ot.opusEnc != nil:
		if len(au.Payload) == 0 {
			return 0, nil
		}
		var pkt *rtp.Packet
		pkt, err = ot.opusEnc.Encode(au.Payload)
		pkts = []*rtp.Packet{pkt}
	}
	if err != nil {
		return 0, fmt.Errorf("packetize %s: %w", stream.CodecName(ot.codec), err)
	}
	ts := ot.offset + uint32(durationToTicks(pts, ot.clockRate))
	n := 0
	for _, pkt := range pkts {
		pkt.Timestamp += ts
		if err := ps.sstream.WritePacketRTPWithNTP(ot.medi, pkt, ntp); err != nil {
			return n, err
		}
		n += pkt.MarshalSize()
	}
	return n, nil
}

func durationToTicks(d time.Duration, clockRate int) int64 {
	cr := int64(clockRate)
	return int64(d/time.Second)*cr + int64(d%time.Second)*cr/int64(time.Second)
}

// writeError is called when the player's write queue overflowed.
func (ps *playSession) writeError(err error) {
	ps.c.log.Debug("rtsp player write error", "stream", ps.name, "error", err.Error())
}

// close stops sending when the RTSP session closes.
func (ps *playSession) close(error) {
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	ps.closed = true
	cancel, done := ps.cancel, ps.done
	ps.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	ps.sstream.Close()
}
