package transcoder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/mps-dev/mps/stream"
)

// Protocol is the PublishOptions.Protocol of the rung streams.
const Protocol = "transcoder"

var (
	errCodecChanged     = errors.New("rendition codec parameters changed")
	errSourceNewSession = errors.New("source started a new session")
)

// rungOut publishes one rung into the hub. It outlives the children that
// feed it: after a crash, the next child continues the same rung session
// (its timestamps are the source's), unless its codec parameters differ.
// It is used by one demuxer at a time, and by the ladder goroutine between
// children.
type rungOut struct {
	hub  *stream.Hub
	name string
	log  *slog.Logger

	pub     *stream.Publisher
	video   *stream.Track
	audio   *stream.Track
	waitKey bool
	last    [2]time.Duration
	hasLast [2]bool
	refused bool // Publish failed in this source session: do not retry

	made    atomic.Bool // published at least once in the current plan
	onFirst func()      // called after each child's first published unit
	fresh   bool        // onFirst not yet called for the current child
}

// attach prepares for a new child: it waits for a keyframe later than
// what was already published.
func (ro *rungOut) attach(onFirst func()) {
	ro.waitKey = true
	ro.onFirst = onFirst
	ro.fresh = true
}

// endSession closes the rung's hub session; the next unit publishes a new one.
func (ro *rungOut) endSession(reason error) {
	if ro.pub != nil {
		ro.pub.Close(reason)
		ro.pub = nil
	}
	ro.video, ro.audio = nil, nil
	ro.hasLast = [2]bool{}
	ro.refused = false
}

// writeVideo publishes one video access unit of the rung, with the codec
// parameters known so far (vc) and the rung's audio codec (ac, nil for
// none). It is the one publishing path of both the MPEG-TS demuxer
// (H.264, H.265) and the fMP4 one (AV1, VP9): it (re)publishes the session
// on a keyframe when there is none or the codecs changed, drops what comes
// before that keyframe, and keeps DTS increasing.
func (ro *rungOut) writeVideo(vc, ac codecs.Codec, dts, pts time.Duration, key bool, payload []byte) {
	if dts < 0 {
		return
	}
	if ro.pub != nil {
		select {
		case <-ro.pub.Done():
			// Kicked from the API: publish again at the next keyframe.
			ro.log.Info("transcoder rendition publisher stopped by the hub", "stream", ro.name, "reason", ro.pub.Err())
			ro.endSession(ro.pub.Err())
			ro.waitKey = true
		default:
		}
	}
	if ro.waitKey || ro.pub == nil {
		if !key || vc == nil || (ro.hasLast[0] && dts <= ro.last[0]) {
			return
		}
		if ro.pub != nil && (!sameCodec(ro.video.Codec, vc) || !sameAudio(ro.audio, ac)) {
			ro.log.Info("transcoder rendition codec parameters changed, starting a new session", "stream", ro.name)
			ro.endSession(errCodecChanged)
		}
		if ro.pub == nil && !ro.publish(vc, ac) {
			return
		}
		ro.waitKey = false
	}
	if ro.hasLast[0] && dts <= ro.last[0] {
		return
	}
	ro.last[0], ro.hasLast[0] = dts, true
	ro.pub.WriteUnit(&stream.AccessUnit{Track: ro.video, DTS: dts, PTS: max(pts, dts), Key: key, Payload: payload})
	if ro.fresh {
		ro.fresh = false
		ro.made.Store(true)
		if ro.onFirst != nil {
			ro.onFirst()
		}
	}
}

func (ro *rungOut) writeAudio(dts time.Duration, payload []byte) {
	if ro.pub == nil || ro.waitKey || ro.audio == nil || dts < 0 {
		return
	}
	if ro.hasLast[1] && dts <= ro.last[1] {
		return
	}
	ro.last[1], ro.hasLast[1] = dts, true
	ro.pub.WriteUnit(&stream.AccessUnit{Track: ro.audio, DTS: dts, PTS: dts, Key: true, Payload: payload})
}

func (ro *rungOut) publish(vc, ac codecs.Codec) bool {
	if ro.refused {
		return false
	}
	ro.video = &stream.Track{Codec: vc, ClockRate: 90000}
	tracks := []*stream.Track{ro.video}
	ro.audio = nil
	if ac != nil {
		rate := 48000
		if c, ok := ac.(*codecs.MPEG4Audio); ok {
			rate = c.Config.SampleRate
		}
		ro.audio = &stream.Track{Codec: ac, ClockRate: rate}
		tracks = append(tracks, ro.audio)
	}
	pub, err := ro.hub.Publish(ro.name, tracks, stream.PublishOptions{Protocol: Protocol})
	if err != nil {
		ro.log.Error("transcoder cannot publish rendition", "stream", ro.name, "error", err)
		ro.refused = true
		ro.video, ro.audio = nil, nil
		return false
	}
	ro.pub = pub
	ro.hasLast = [2]bool{}
	return true
}

func sameCodec(a, b codecs.Codec) bool { return reflect.DeepEqual(a, b) }

func sameAudio(t *stream.Track, c codecs.Codec) bool {
	if t == nil {
		return c == nil
	}
	return sameCodec(t.Codec, c)
}

// unwrapper turns 33-bit MPEG-TS timestamps back into the 64-bit ticks they
// were written as: the value nearest to the previous one (initially the
// first tick fed to the child) that matches in the low 33 bits.
type unwrapper struct{ prev int64 }

func (u *unwrapper) unwrap(raw int64) int64 {
	v := u.prev + ((raw-u.prev)&tsMask+(1<<32))&tsMask - (1 << 32)
	u.prev = v
	return v
}

// rungDemux reads one child's MPEG-TS output of one rung.
type rungDemux struct {
	ro   *rungOut
	log  *slog.Logger
	hevc bool
	vps  []byte
	sps  []byte
	pps  []byte
	ac   codecs.Codec
	vu   unwrapper
	au   unwrapper
	rate int64 // audio sample rate
}

// demuxRung reads r until it ends, publishing into ro. ref is the tick
// value of the first unit fed to the child, to unwrap timestamps against.
// If the output cannot be read, the rest of it is drained so that the
// child never blocks on it.
func demuxRung(r io.Reader, ro *rungOut, ref int64, log *slog.Logger) error {
	defer func() { _, _ = io.Copy(io.Discard, r) }()
	tr := &mpegts.Reader{R: bufio.NewReaderSize(r, 64<<10)}
	if err := tr.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		return fmt.Errorf("rendition %s: reading MPEG-TS: %w", ro.name, err)
	}
	d := &rungDemux{ro: ro, log: log, vu: unwrapper{ref}, au: unwrapper{ref}}
	var video *mpegts.Track
	for _, t := range tr.Tracks() {
		switch c := t.Codec.(type) {
		case *tscodecs.H264:
			if video == nil {
				video = t
				tr.OnDataH264(t, func(pts, dts int64, au [][]byte) error { d.onVideo(pts, dts, au); return nil })
			}
		case *tscodecs.H265:
			if video == nil {
				video, d.hevc = t, true
				tr.OnDataH265(t, func(pts, dts int64, au [][]byte) error { d.onVideo(pts, dts, au); return nil })
			}
		case *tscodecs.MPEG4Audio:
			if d.ac == nil && c.Config.SampleRate > 0 {
				d.ac = &codecs.MPEG4Audio{Config: c.Config}
				d.rate = int64(c.Config.SampleRate)
				tr.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error { d.onAAC(pts, aus); return nil })
			}
		case *tscodecs.Opus:
			if d.ac == nil {
				ch := c.ChannelCount //nolint:staticcheck // filled by the reader
				if c.Desc != nil {
					ch = c.Desc.ChannelCount()
				}
				d.ac = &codecs.Opus{ChannelCount: max(ch, 1)}
				d.rate = 48000
				tr.OnDataOpus(t, func(pts int64, pkts [][]byte) error { d.onOpus(pts, pkts); return nil })
			}
		}
	}
	if video == nil {
		return fmt.Errorf("rendition %s: ffmpeg's output has no H.264 or H.265 video", ro.name)
	}
	var decodeErrors atomic.Int64
	tr.OnDecodeError(func(err error) {
		if decodeErrors.Add(1) <= 5 {
			log.Debug("transcoder rendition decode error", "stream", ro.name, "error", err)
		}
	})
	for {
		if err := tr.Read(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return fmt.Errorf("rendition %s: reading MPEG-TS: %w", ro.name, err)
		}
	}
}

func (d *rungDemux) onVideo(rawPTS, rawDTS int64, au [][]byte) {
	nalus, vps, sps, pps := stream.SplitParameterSets(au, d.hevc)
	if vps != nil {
		d.vps = vps
	}
	if sps != nil {
		d.sps = sps
	}
	if pps != nil {
		d.pps = pps
	}
	if len(nalus) == 0 {
		return
	}
	dtsT := d.vu.unwrap(rawDTS)
	ptsT := dtsT + ((rawPTS-rawDTS)&tsMask+(1<<32))&tsMask - (1 << 32)
	var vc codecs.Codec
	var key bool
	if d.hevc {
		key = h265.IsRandomAccess(nalus)
		if d.vps != nil && d.sps != nil && d.pps != nil {
			vc = &codecs.H265{VPS: d.vps, SPS: d.sps, PPS: d.pps}
		}
	} else {
		key = h264.IsRandomAccess(nalus)
		if d.sps != nil && d.pps != nil {
			vc = &codecs.H264{SPS: d.sps, PPS: d.pps}
		}
	}
	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		return
	}
	d.ro.writeVideo(vc, d.ac, fromTicks(dtsT), fromTicks(ptsT), key, payload)
}

func (d *rungDemux) onAAC(rawPTS int64, aus [][]byte) {
	base := d.au.unwrap(rawPTS)
	for i, au := range aus {
		t := base + int64(i)*1024*90000/d.rate
		d.ro.writeAudio(fromTicks(t), au)
	}
}

func (d *rungDemux) onOpus(rawPTS int64, pkts [][]byte) {
	t := d.au.unwrap(rawPTS)
	var samples int64
	for _, p := range pkts {
		d.ro.writeAudio(fromTicks(t+samples*90000/48000), p)
		samples += opus.PacketDuration2(p)
	}
}

// jpegSplitter cuts a stream of concatenated JPEG images (ffmpeg's
// image2pipe with mjpeg) into whole images. It walks the marker segments,
// so an FFD9 inside a segment is never taken for the end of an image, and
// it drops garbage between images.
type jpegSplitter struct {
	buf   []byte
	pos   int // next byte to examine in buf
	state int
	// Max bounds an image; a larger one is dropped. 0 means 16 MiB.
	Max int
}

const (
	jpegFindSOI = iota
	jpegMarker
	jpegEntropy
)

// Feed adds p and returns the images it completed. They are copies.
func (s *jpegSplitter) Feed(p []byte) [][]byte {
	s.buf = append(s.buf, p...)
	limit := s.Max
	if limit <= 0 {
		limit = 16 << 20
	}
	var out [][]byte
	for {
		switch s.state {
		case jpegFindSOI:
			i := 0
			for ; i+1 < len(s.buf); i++ {
				if s.buf[i] == 0xFF && s.buf[i+1] == 0xD8 {
					break
				}
			}
			s.drop(i)
			if len(s.buf) < 2 {
				return out
			}
			s.pos, s.state = 2, jpegMarker

		case jpegMarker:
			if s.pos+2 > len(s.buf) {
				return s.trim(out, limit)
			}
			if s.buf[s.pos] != 0xFF {
				s.resync()
				continue
			}
			m := s.buf[s.pos+1]
			switch {
			case m == 0xFF: // fill byte
				s.pos++
			case m == 0xD9: // EOI
				if s.pos+2 <= limit {
					out = append(out, append([]byte(nil), s.buf[:s.pos+2]...))
				}
				s.drop(s.pos + 2)
				s.state = jpegFindSOI
			case m == 0xD8 || m == 0x00:
				s.resync()
			case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // no length
				s.pos += 2
			default:
				if s.pos+4 > len(s.buf) {
					return s.trim(out, limit)
				}
				n := int(s.buf[s.pos+2])<<8 | int(s.buf[s.pos+3])
				if n < 2 {
					s.resync()
					continue
				}
				s.pos += 2 + n
				if m == 0xDA { // SOS: entropy-coded data follows its header
					s.state = jpegEntropy
				}
			}

		case jpegEntropy:
			for s.pos+1 < len(s.buf) {
				if s.buf[s.pos] != 0xFF {
					s.pos++
					continue
				}
				m := s.buf[s.pos+1]
				if m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0xFF {
					// Stuffed byte, restart marker, or fill.
					if m == 0xFF {
						s.pos++
					} else {
						s.pos += 2
					}
					continue
				}
				s.state = jpegMarker
				break
			}
			if s.state == jpegEntropy {
				return s.trim(out, limit)
			}
		}
	}
}

// resync drops the broken image and looks for the next SOI after its start.
func (s *jpegSplitter) resync() {
	s.drop(1)
	s.state = jpegFindSOI
}

// trim drops an image that grew beyond limit.
func (s *jpegSplitter) trim(out [][]byte, limit int) [][]byte {
	if len(s.buf) > limit || s.pos > limit {
		s.buf = s.buf[:0]
		s.pos = 0
		s.state = jpegFindSOI
	}
	return out
}

func (s *jpegSplitter) drop(n int) {
	n = min(n, len(s.buf))
	rest := copy(s.buf, s.buf[n:])
	s.buf = s.buf[:rest]
	s.pos = max(0, s.pos-n)
}

// readThumbnails splits r into JPEG images and hands each to put.
func readThumbnails(r io.Reader, put func([]byte)) error {
	var s jpegSplitter
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		for _, img := range s.Feed(buf[:n]) {
			put(img)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// lineLogger logs a child's stderr line by line: errors at Warn, the rest
// (and errors beyond a burst) at Debug. It remembers the last error line.
type lineLogger struct {
	mu   sync.Mutex
	last string
}

func (ll *lineLogger) lastLine() string {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.last
}

func (ll *lineLogger) read(r io.Reader, log *slog.Logger) {
	br := bufio.NewReaderSize(r, 4096)
	var (
		windowStart time.Time
		inWindow    int
	)
	for {
		line, isPrefix, err := br.ReadLine()
		if err != nil {
			return
		}
		text := string(line)
		for isPrefix && err == nil {
			// Skip the rest of an over-long line.
			_, isPrefix, err = br.ReadLine()
		}
		if text == "" {
			continue
		}
		level := slog.LevelDebug
		if isErrorLine(text) {
			ll.mu.Lock()
			ll.last = text
			ll.mu.Unlock()
			now := time.Now()
			if now.Sub(windowStart) > 10*time.Second {
				windowStart, inWindow = now, 0
			}
			inWindow++
			if inWindow <= 10 {
				level = slog.LevelWarn
			}
		}
		log.Log(context.Background(), level, "ffmpeg: "+text)
	}
}

// isErrorLine tells ffmpeg's error lines (-loglevel level+warning prefixes
// each line with its level) from warnings and other chatter.
func isErrorLine(s string) bool {
	for _, tag := range []string{"[error]", "[fatal]", "[panic]"} {
		if strings.Contains(s, tag) {
			return true
		}
	}
	return false
}
