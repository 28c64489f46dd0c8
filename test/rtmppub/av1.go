package rtmppub

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
)

// maxOBUSize bounds one OBU read from the encoder.
const maxOBUSize = 8 << 20

// obuSplitter reads an AV1 low-overhead bitstream (OBUs with size fields,
// as ffmpeg's "obu" muxer writes) and groups it into temporal units.
type obuSplitter struct {
	r       *bufio.Reader
	cur     [][]byte
	pending []byte
}

func newOBUSplitter(r *bufio.Reader) *obuSplitter {
	return &obuSplitter{r: r}
}

// readOBU reads one OBU, header and size field included.
func (s *obuSplitter) readOBU() ([]byte, error) {
	hdr, err := s.r.ReadByte()
	if err != nil {
		return nil, err
	}
	obu := []byte{hdr}
	if hdr&0b100 != 0 { // obu_extension_flag
		ext, err := s.r.ReadByte()
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		obu = append(obu, ext)
	}
	if hdr&0b10 == 0 {
		return nil, errors.New("OBU without a size field")
	}
	var size uint64
	for i := 0; ; i++ {
		b, err := s.r.ReadByte()
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		obu = append(obu, b)
		size |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			break
		}
		if i == 7 {
			return nil, errors.New("invalid OBU size")
		}
	}
	if size > maxOBUSize {
		return nil, fmt.Errorf("OBU of %d bytes", size)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(s.r, payload); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return append(obu, payload...), nil
}

// Next returns the OBUs of the next temporal unit, without its temporal
// delimiter (gortmplib's Writer adds one).
func (s *obuSplitter) Next() ([][]byte, error) {
	for {
		obu := s.pending
		s.pending = nil
		if obu == nil {
			var err error
			obu, err = s.readOBU()
			if errors.Is(err, io.EOF) {
				if len(s.cur) > 0 {
					tu := s.cur
					s.cur = nil
					return tu, nil
				}
				return nil, io.EOF
			}
			if err != nil {
				return nil, err
			}
		}
		if av1.OBUType((obu[0]>>3)&0b1111) == av1.OBUTypeTemporalDelimiter {
			if len(s.cur) > 0 {
				tu := s.cur
				s.cur = nil
				return tu, nil
			}
			continue
		}
		s.cur = append(s.cur, obu)
	}
}

type av1Sender struct{}

func (av1Sender) Track(first [][]byte) (*gortmplib.Track, error) {
	if !av1.IsRandomAccess2(first) {
		return nil, errors.New("first AV1 temporal unit has no sequence header")
	}
	return &gortmplib.Track{Codec: &rtmpcodecs.AV1{}}, nil
}

func (av1Sender) Write(w *gortmplib.Writer, t *gortmplib.Track, pts time.Duration, tu [][]byte) error {
	return w.WriteAV1(t, pts, tu)
}
