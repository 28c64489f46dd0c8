package rtmppub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
)

// maxFrameSize bounds one IVF frame.
const maxFrameSize = 8 << 20

// ivfReader reads frames from an IVF file (32-byte file header, then a
// 12-byte header before each frame: size and timestamp, little-endian).
type ivfReader struct {
	r          io.Reader
	headerRead bool
}

func newIVFReader(r io.Reader) *ivfReader {
	return &ivfReader{r: r}
}

// Next returns the next frame as a one-element unit.
func (v *ivfReader) Next() ([][]byte, error) {
	if !v.headerRead {
		var hdr [32]byte
		if _, err := io.ReadFull(v.r, hdr[:]); err != nil {
			return nil, fmt.Errorf("IVF header: %w", err)
		}
		if string(hdr[:4]) != "DKIF" {
			return nil, errors.New("not an IVF stream")
		}
		v.headerRead = true
	}
	var fh [12]byte
	if _, err := io.ReadFull(v.r, fh[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("IVF frame header: %w", err)
	}
	size := binary.LittleEndian.Uint32(fh[:4])
	if size == 0 || size > maxFrameSize {
		return nil, fmt.Errorf("IVF frame of %d bytes", size)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(v.r, frame); err != nil {
		return nil, fmt.Errorf("IVF frame: %w", err)
	}
	return [][]byte{frame}, nil
}

type vp9Sender struct{}

func (vp9Sender) Track(first [][]byte) (*gortmplib.Track, error) {
	if !vp9.IsRandomAccess(first[0]) {
		return nil, errors.New("first VP9 frame is not a keyframe")
	}
	return &gortmplib.Track{Codec: &rtmpcodecs.VP9{}}, nil
}

func (vp9Sender) Write(w *gortmplib.Writer, t *gortmplib.Track, pts time.Duration, frame [][]byte) error {
	return w.WriteVP9(t, pts, frame[0])
}
