package webrtc

import (
	"errors"
)

// H.264 RTP payload types (RFC 6184) the depacketizer handles.
const (
	naluSTAPA = 24
	naluFUA   = 28
)

// Limits that keep a hostile publisher from growing buffers without end.
const (
	maxAUSize   = 8 << 20
	maxAUNALUs  = 1024
	maxNALUSize = 4 << 20
)

var (
	errRTPLoss      = errors.New("rtp packets lost")
	errBadRTPH264   = errors.New("malformed H.264 RTP payload")
	errAUTooLarge   = errors.New("H.264 access unit too large")
	errUnsupportedH = errors.New("unsupported H.264 RTP packetization")
)

// h264Depacketizer turns RTP payloads of one H.264 stream into access
// units (lists of NAL units), split at the marker bit or a timestamp change.
// After a sequence gap it drops what it holds and reports errRTPLoss once.
type h264Depacketizer struct {
	started bool
	lastSeq uint16
	ts      uint32
	nalus   [][]byte
	size    int
	fu      []byte // FU-A in progress, nil when none
	broken  bool   // the current access unit lost a packet
}

// push adds one packet. It returns a completed access unit (when the
// packet ends one, or starts a new one) with its RTP timestamp.
func (d *h264Depacketizer) push(seq uint16, ts uint32, marker bool, payload []byte) (au [][]byte, auTS uint32, err error) {
	if d.started && seq != d.lastSeq+1 {
		// Loss or reordering: whatever is pending cannot be trusted.
		if int16(seq-d.lastSeq) <= 0 {
			return nil, 0, nil // duplicate or late: ignore
		}
		d.reset()
		d.broken = true
		err = errRTPLoss
	}
	d.started = true
	d.lastSeq = seq

	if len(d.nalus) > 0 || d.fu != nil {
		if ts != d.ts {
			// A new access unit began without a marker on the last one.
			au, auTS = d.take()
		}
	}
	if d.broken && ts != d.ts {
		d.broken = false
	}
	d.ts = ts

	if perr := d.parse(payload); perr != nil {
		d.reset()
		d.broken = true
		if err == nil {
			err = perr
		}
	}
	if marker && au == nil {
		au, auTS = d.take()
	}
	return au, auTS, err
}

func (d *h264Depacketizer) reset() {
	d.nalus = nil
	d.size = 0
	d.fu = nil
}

// take returns the pending access unit, unless it lost a packet.
func (d *h264Depacketizer) take() ([][]byte, uint32) {
	nalus, ts, broken := d.nalus, d.ts, d.broken
	d.reset()
	d.broken = false
	if broken || len(nalus) == 0 {
		return nil, 0
	}
	return nalus, ts
}

func (d *h264Depacketizer) add(n []byte) error {
	if len(n) == 0 {
		return nil
	}
	if len(d.nalus) >= maxAUNALUs || d.size+len(n) > maxAUSize {
		return errAUTooLarge
	}
	d.nalus = append(d.nalus, n)
	d.size += len(n)
	return nil
}

func (d *h264Depacketizer) parse(p []byte) error {
	if len(p) < 1 {
		return errBadRTPH264
	}
	if d.broken {
		return nil // skip the rest of a damaged access unit
	}
	typ := p[0] & 0x1f
	switch {
	case typ >= 1 && typ <= 23:
		if d.fu != nil {
			return errBadRTPH264
		}
		return d.add(append([]byte(nil), p...))

	case typ == naluSTAPA:
		if d.fu != nil {
			return errBadRTPH264
		}
		p = p[1:]
		for len(p) > 0 {
			if len(p) < 2 {
				return errBadRTPH264
			}
			n := int(p[0])<<8 | int(p[1])
			p = p[2:]
			if n == 0 || n > len(p) {
				return errBadRTPH264
			}
			if err := d.add(append([]byte(nil), p[:n]...)); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil

	case typ == naluFUA:
		if len(p) < 2 {
			return errBadRTPH264
		}
		start, end := p[1]&0x80 != 0, p[1]&0x40 != 0
		if start {
			if d.fu != nil {
				return errBadRTPH264
			}
			d.fu = append(make([]byte, 0, 2*len(p)), p[0]&0xe0|p[1]&0x1f)
		} else if d.fu == nil {
			return errBadRTPH264 // a fragment whose start was lost
		}
		if len(d.fu)+len(p)-2 > maxNALUSize {
			return errAUTooLarge
		}
		d.fu = append(d.fu, p[2:]...)
		if end {
			n := d.fu
			d.fu = nil
			return d.add(n)
		}
		return nil

	default:
		return errUnsupportedH
	}
}
