package srt

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/tsdemux"
	"github.com/mps-dev/mps/stream"
)

// maxPending bounds the access units held while a video track waits for
// its first parameter sets.
const maxPending = 1024

var (
	errCodecChanged = errors.New("codec parameters changed")
	errServerClosed = errors.New("srt server closed")
	errTrackTimeout = errors.New("no tracks in time (no PMT, or no video parameter sets)")
)

// publishSession converts one SRT publisher's MPEG-TS into hub access units.
type publishSession struct {
	c      *connection
	name   string
	app    auth.App
	params url.Values
	opts   stream.PublishOptions
	dem    *tsdemux.Demuxer
	in     *countingReader

	pub       *stream.Publisher
	codecs    map[*tsdemux.Track]codecs.Codec // the codecs of the current session
	tracks    map[*tsdemux.Track]*stream.Track
	stopWatch func()
	published bool
	pending   []tsdemux.Unit
	base      time.Duration
	bytesSeen uint64
	timedOut  atomic.Bool
}

func (c *connection) publish(d decision) {
	ps := &publishSession{
		c:      c,
		name:   d.sid.Name,
		app:    d.app,
		params: d.params,
		opts:   stream.PublishOptions{Protocol: Protocol, RemoteAddr: c.remote, Takeover: d.app.Takeover},
		in:     &countingReader{r: c.conn},
	}
	err := ps.run()
	reason := err
	switch {
	case errors.Is(err, io.EOF):
		reason = nil
	case c.s.ctx.Err() != nil:
		reason = errServerClosed
	}
	ps.stopPublisher(reason)
	switch {
	case c.s.ctx.Err() != nil:
		c.log.Debug("srt publisher closed by server shutdown", "error", err)
	case !ps.published:
		c.log.Warn("srt publish failed", "error", err)
	case errors.Is(err, io.EOF):
		c.log.Info("srt publisher disconnected")
	default:
		c.log.Info("srt publisher closed", "error", err)
	}
}

func (ps *publishSession) run() error {
	// Bound the wait for the tracks: the PMT, and parameter sets for video.
	timer := time.AfterFunc(ps.c.s.TrackTimeout, func() {
		ps.timedOut.Store(true)
		ps.c.conn.Close()
	})
	defer timer.Stop()

	ps.dem = &tsdemux.Demuxer{
		R:      ps.in,
		OnUnit: ps.onUnit,
		OnIgnoredTrack: func(pid uint16, codec string) {
			ps.c.log.Warn("srt track ignored: unsupported codec", "pid", pid, "codec", codec)
		},
		OnDecodeError: func(err error) {
			ps.c.log.Debug("srt mpeg-ts data skipped", "error", err)
		},
	}
	if err := ps.dem.Initialize(); err != nil {
		if ps.timedOut.Load() {
			return errTrackTimeout
		}
		return fmt.Errorf("reading tracks: %w", err)
	}
	for {
		if err := ps.dem.Read(); err != nil {
			if ps.timedOut.Load() && !ps.published {
				return errTrackTimeout
			}
			if ps.pub != nil {
				if reason := ps.pub.Err(); reason != nil {
					return reason // kicked or taken over: the watcher closed the connection
				}
			}
			return err
		}
		if ps.published {
			timer.Stop()
		}
		ps.countBytes()
	}
}

func (ps *publishSession) onUnit(u tsdemux.Unit) error {
	if ps.pub != nil && ps.codecs[u.Track] != u.Codec {
		ps.c.log.Info("srt codec parameters changed, starting a new session", "codec", stream.CodecName(u.Codec))
		ps.stopPublisher(errCodecChanged)
	}
	if ps.pub == nil {
		if !ps.dem.Ready() {
			if len(ps.pending) >= maxPending {
				return errors.New("a video track sent no parameter sets")
			}
			ps.pending = append(ps.pending, u)
			return nil
		}
		if err := ps.start(u); err != nil {
			return err
		}
	}
	ps.write(u)
	return nil
}

// start publishes a session with the tracks as they are now, and writes
// the pending units that belong to it.
func (ps *publishSession) start(first tsdemux.Unit) error {
	ps.codecs = make(map[*tsdemux.Track]codecs.Codec)
	ps.tracks = make(map[*tsdemux.Track]*stream.Track)
	var tracks []*stream.Track
	for _, t := range ps.dem.Tracks() {
		st := &stream.Track{Codec: t.Codec, ClockRate: t.ClockRate}
		ps.codecs[t] = t.Codec
		ps.tracks[t] = st
		tracks = append(tracks, st)
	}
	pending := ps.pending[:0]
	for _, u := range ps.pending {
		if ps.codecs[u.Track] == u.Codec {
			pending = append(pending, u)
		}
	}
	ps.pending = nil
	ps.base = first.DTS
	for _, u := range pending {
		ps.base = min(ps.base, u.DTS)
	}

	pub, err := ps.c.s.Hub.Publish(ps.name, tracks, ps.opts)
	if err != nil {
		return err
	}
	ps.pub = pub
	ps.watch(pub)
	if !ps.published {
		ps.published = true
		ps.c.log.Info("srt publishing", "session", pub.Session().ID, "tracks", trackSummary(tracks), "params", ps.params.Encode())
		if fn := ps.c.s.OnPublish; fn != nil {
			fn(PublishInfo{Name: ps.name, App: ps.app, Params: ps.params, Protocol: Protocol, RemoteAddr: ps.c.remote, Publisher: pub})
		}
	}
	for _, u := range pending {
		ps.write(u)
	}
	return nil
}

func (ps *publishSession) write(u tsdemux.Unit) {
	ps.pub.WriteUnit(&stream.AccessUnit{
		Track:   ps.tracks[u.Track],
		DTS:     max(u.DTS-ps.base, 0),
		PTS:     max(u.PTS-ps.base, 0),
		Key:     u.Key,
		Payload: u.Payload,
	})
}

// watch closes the connection when the hub wants the publisher gone
// (kicked, taken over, hub closed): the blocked read then returns.
func (ps *publishSession) watch(pub *stream.Publisher) {
	conn := ps.c.conn
	ps.stopWatch = pub.WhenDone(func(error) { conn.Close() })
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

// countBytes adds the bytes received since the last call to the stream's counter.
func (ps *publishSession) countBytes() {
	if ps.pub == nil {
		return
	}
	if n := ps.in.n.Load(); n > ps.bytesSeen {
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
