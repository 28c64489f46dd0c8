package rtmppub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// maxNALUSize bounds one NAL unit read from the encoder.
const maxNALUSize = 8 << 20

// nalScanner reads NAL units from an Annex-B byte stream.
type nalScanner struct {
	r    io.Reader
	buf  []byte
	pos  int // start of the current NAL unit's payload in buf, -1 before the first start code
	scan int // where to resume looking for the next start code
	eof  bool
}

func newNALScanner(r io.Reader) *nalScanner {
	return &nalScanner{r: r, pos: -1}
}

var startCode = []byte{0, 0, 1}

// Next returns the next NAL unit without its start code, or io.EOF.
func (s *nalScanner) Next() ([]byte, error) {
	for {
		if s.pos < 0 {
			if i := bytes.Index(s.buf, startCode); i >= 0 {
				s.pos = i + 3
				s.scan = s.pos
				continue
			}
		} else if i := bytes.Index(s.buf[s.scan:], startCode); i >= 0 {
			end := s.scan + i
			nalu := bytes.TrimRight(s.buf[s.pos:end], "\x00") // zeros belong to the next start code
			out := bytes.Clone(nalu)
			s.buf = s.buf[end+3:]
			s.pos, s.scan = 0, 0
			if len(out) == 0 {
				continue
			}
			return out, nil
		} else {
			// Resume just before the end: a start code may straddle reads.
			s.scan = max(s.pos, len(s.buf)-2)
		}
		if s.eof {
			if s.pos >= 0 && s.pos < len(s.buf) {
				out := bytes.Clone(bytes.TrimRight(s.buf[s.pos:], "\x00"))
				s.buf, s.pos = nil, -1
				if len(out) > 0 {
					return out, nil
				}
			}
			return nil, io.EOF
		}
		if len(s.buf)-max(s.pos, 0) > maxNALUSize {
			return nil, fmt.Errorf("NAL unit larger than %d bytes", maxNALUSize)
		}
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
}

func (s *nalScanner) fill() error {
	if len(s.buf) == cap(s.buf) {
		grown := make([]byte, len(s.buf), max(2*cap(s.buf), 64<<10))
		copy(grown, s.buf)
		s.buf = grown
	}
	n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
	s.buf = s.buf[:len(s.buf)+n]
	if errors.Is(err, io.EOF) {
		s.eof = true
		return nil
	}
	return err
}

// h265Splitter groups H.265 NAL units into access units (ITU-T H.265,
// 7.4.2.4.4): a unit ends before an AUD, a parameter set or a prefix SEI
// that follows a picture, and before the first slice of the next picture.
type h265Splitter struct {
	sc      *nalScanner
	cur     [][]byte
	hasVCL  bool
	pending []byte
}

func newH265Splitter(r io.Reader) *h265Splitter {
	return &h265Splitter{sc: newNALScanner(r)}
}

// Next returns the NAL units of the next access unit, AUDs left out.
func (s *h265Splitter) Next() ([][]byte, error) {
	for {
		nalu := s.pending
		s.pending = nil
		if nalu == nil {
			var err error
			nalu, err = s.sc.Next()
			if errors.Is(err, io.EOF) {
				if len(s.cur) > 0 && s.hasVCL {
					au := s.cur
					s.cur, s.hasVCL = nil, false
					return au, nil
				}
				return nil, io.EOF
			}
			if err != nil {
				return nil, err
			}
		}
		if len(nalu) < 2 {
			continue
		}
		typ := h265.NALUType((nalu[0] >> 1) & 0b111111)
		vcl := typ < 32
		startsAU := false
		switch {
		case vcl:
			// first_slice_segment_in_pic_flag is the first bit after the 2-byte header.
			startsAU = len(nalu) > 2 && nalu[2]&0x80 != 0
		case typ == h265.NALUType_AUD_NUT, typ == h265.NALUType_VPS_NUT, typ == h265.NALUType_SPS_NUT,
			typ == h265.NALUType_PPS_NUT, typ == h265.NALUType_PREFIX_SEI_NUT, typ >= 41 && typ <= 44, typ >= 48 && typ <= 55:
			startsAU = true
		}
		if startsAU && s.hasVCL {
			au := s.cur
			s.cur, s.hasVCL = nil, false
			s.pending = nalu
			return au, nil
		}
		if typ == h265.NALUType_AUD_NUT {
			continue
		}
		s.cur = append(s.cur, nalu)
		s.hasVCL = s.hasVCL || vcl
	}
}

type h265Sender struct{}

func (h265Sender) Track(first [][]byte) (*gortmplib.Track, error) {
	var vps, sps, pps []byte
	for _, n := range first {
		switch h265.NALUType((n[0] >> 1) & 0b111111) {
		case h265.NALUType_VPS_NUT:
			vps = n
		case h265.NALUType_SPS_NUT:
			sps = n
		case h265.NALUType_PPS_NUT:
			pps = n
		}
	}
	if vps == nil || sps == nil || pps == nil {
		return nil, errors.New("first H.265 access unit has no VPS, SPS and PPS")
	}
	return &gortmplib.Track{Codec: &rtmpcodecs.H265{VPS: vps, SPS: sps, PPS: pps}}, nil
}

func (h265Sender) Write(w *gortmplib.Writer, t *gortmplib.Track, pts time.Duration, au [][]byte) error {
	return w.WriteH265(t, pts, pts, au)
}
