package webrtc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

// opusTranscoder turns the AAC frames of one stream into Opus packets with
// an ffmpeg child: ADTS in on stdin, Ogg Opus out on stdout.
type opusTranscoder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	cfg    mpeg4audio.AudioSpecificConfig
	log    *slog.Logger
	in     chan []byte
	done   chan struct{}
	pumped chan struct{}
	once   sync.Once

	mu       sync.Mutex
	firstPTS time.Duration
	hasFirst bool
}

// startOpusTranscoder starts ffmpeg; the Opus packets go to out.
func startOpusTranscoder(ctx context.Context, ffmpeg string, c *codecs.MPEG4Audio, log *slog.Logger, out *rtpOut) (*opusTranscoder, error) {
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0",
		"-f", "aac", "-i", "pipe:0",
		"-vn", "-c:a", "libopus", "-ar", "48000", "-ac", "2", "-b:a", "96k", "-application", "lowdelay", "-frame_duration", "20",
		"-f", "ogg", "-page_duration", "20000", "-flush_packets", "1", "pipe:1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", ffmpeg, err)
	}
	t := &opusTranscoder{cmd: cmd, stdin: stdin, stdout: stdout, cfg: c.Config, log: log,
		in: make(chan []byte, 256), done: make(chan struct{}), pumped: make(chan struct{})}
	go t.writeLoop()
	go t.pump(out)
	return t, nil
}

func (t *opusTranscoder) writeLoop() {
	for {
		select {
		case b := <-t.in:
			if _, err := t.stdin.Write(b); err != nil {
				return
			}
		case <-t.done:
			return
		}
	}
}

// feed queues one AAC frame; it never blocks (a full queue drops it).
func (t *opusTranscoder) feed(au *stream.AccessUnit) {
	t.mu.Lock()
	if !t.hasFirst {
		t.firstPTS, t.hasFirst = au.PTS, true
	}
	t.mu.Unlock()
	pkt := mpeg4audio.ADTSPackets{{Type: t.cfg.Type, SampleRate: t.cfg.SampleRate, ChannelConfig: t.cfg.ChannelConfig, AU: au.Payload}}
	if t.cfg.ChannelConfig == 0 {
		pkt[0].ChannelConfig = 2
	}
	b, err := pkt.Marshal()
	if err != nil {
		return
	}
	select {
	case t.in <- b:
	default:
	}
}

// pump reads Opus packets and sends them to o, timed from the first AAC
// frame fed plus the samples sent.
func (t *opusTranscoder) pump(o *rtpOut) {
	defer close(t.pumped)
	r := bufio.NewReader(t.stdout)
	var samples int64
	err := readOggPackets(r, func(p []byte) error {
		if isOpusHeader(p) {
			return nil
		}
		t.mu.Lock()
		base := t.firstPTS
		t.mu.Unlock()
		pts := base + stream.FromTicks(samples, 48000)
		samples += max(opus.PacketDuration2(p), 0)
		_, err := o.write([][]byte{p}, pts)
		return err
	})
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.log.Debug("whep opus transcoder output ended", "error", err.Error())
	}
}

func (t *opusTranscoder) close() {
	t.once.Do(func() {
		close(t.done)
		t.stdin.Close()
		if t.cmd.Process != nil {
			t.cmd.Process.Kill()
		}
		t.cmd.Wait()
		<-t.pumped
	})
}

func isOpusHeader(p []byte) bool {
	return len(p) >= 8 && (string(p[:8]) == "OpusHead" || string(p[:8]) == "OpusTags")
}

var errBadOgg = errors.New("malformed Ogg page")

// maxOggPacket bounds a packet spread over several pages.
const maxOggPacket = 1 << 20

// readOggPackets calls fn with every packet of an Ogg stream (of one
// logical bitstream) until r ends or fn fails.
func readOggPackets(r io.Reader, fn func([]byte) error) error {
	var hdr [27]byte
	var seg [255]byte
	var pkt []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		if string(hdr[:4]) != "OggS" || hdr[4] != 0 {
			return errBadOgg
		}
		_ = binary.LittleEndian.Uint64(hdr[6:14]) // granule position
		n := int(hdr[26])
		if _, err := io.ReadFull(r, seg[:n]); err != nil {
			return err
		}
		total := 0
		for _, l := range seg[:n] {
			total += int(l)
		}
		body := make([]byte, total)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		off := 0
		for _, l := range seg[:n] {
			pkt = append(pkt, body[off:off+int(l)]...)
			off += int(l)
			if len(pkt) > maxOggPacket {
				return errBadOgg
			}
			if l < 255 {
				if len(pkt) > 0 {
					if err := fn(pkt); err != nil {
						return err
					}
				}
				pkt = nil
			}
		}
	}
}
