package packager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mps-dev/mps/stream"
)

// Limits that keep a damaged or hostile file from making ReadFMP4
// allocate without bound.
const (
	maxFMP4HeaderBox = 16 << 20
	maxFMP4MoofBox   = 16 << 20
	maxFMP4Samples   = 1 << 24
)

// ErrNoFMP4Header is returned by ReadFMP4 for a file that has no ftyp/moov
// header before its first fragment.
var ErrNoFMP4Header = errors.New("no ftyp/moov header")

// FMP4Index is what a fragmented MP4 file holds, read from its boxes
// without reading the media: per track, its codec, timescale and sample
// table, ready for a VODPeriod (with the file as VODPeriod.Media).
type FMP4Index struct {
	// Tracks are the file's tracks in the order of its moov, with Index
	// set to their position and ClockRate to their timescale.
	Tracks     []*stream.Track
	Timescales []uint32
	// Samples lists each track's samples in decode order, with offsets
	// into the file.
	Samples [][]VODSample
	// ValidSize is where the last complete fragment ends: a file cut
	// short (by a crash, say) plays up to here.
	ValidSize int64
	// Fragments counts the complete moof+mdat pairs.
	Fragments int
}

// Duration is the longest track's length, from the start of the media
// timeline.
func (ix *FMP4Index) Duration() (d time.Duration) {
	for i, ss := range ix.Samples {
		if len(ss) == 0 {
			continue
		}
		last := ss[len(ss)-1]
		d = max(d, stream.FromTicks(last.DTS+int64(last.Duration), ix.Timescales[i]))
	}
	return d
}

// fmp4Box is an ISO BMFF box header.
type fmp4Box struct {
	typ    string
	offset int64
	header int64 // header length: 8, or 16 with a 64-bit size
	size   int64 // whole box; extends to the end of the file when 0 is coded
}

func readFMP4Box(r io.ReaderAt, off, end int64) (fmp4Box, error) {
	var b [16]byte
	if end-off < 8 {
		return fmp4Box{}, io.ErrUnexpectedEOF
	}
	if _, err := r.ReadAt(b[:8], off); err != nil {
		return fmp4Box{}, err
	}
	h := fmp4Box{typ: string(b[4:8]), offset: off, header: 8, size: int64(binary.BigEndian.Uint32(b[:4]))}
	switch h.size {
	case 0:
		h.size = end - off
	case 1:
		if end-off < 16 {
			return fmp4Box{}, io.ErrUnexpectedEOF
		}
		if _, err := r.ReadAt(b[8:16], off+8); err != nil {
			return fmp4Box{}, err
		}
		h.header = 16
		h.size = int64(binary.BigEndian.Uint64(b[8:16]))
	}
	if h.size < h.header {
		return fmp4Box{}, fmt.Errorf("box %q at %d: size %d is too small", h.typ, off, h.size)
	}
	return h, nil
}

// ReadFMP4 reads the boxes of a fragmented MP4 file of size bytes: the
// moov of an ftyp/moov header, then every moof and the mdat after it. Each
// track's ID must be its position plus one. A missing or cut-off last
// fragment is not an error: ValidSize tells where the complete ones end.
// Edit lists are not applied: sample times are the tfdt-based decode times.
func ReadFMP4(r io.ReaderAt, size int64) (*FMP4Index, error) {
	ix := &FMP4Index{}
	var headerEnd int64
	off := int64(0)
	for off < size {
		h, err := readFMP4Box(r, off, size)
		if err != nil {
			break
		}
		if h.size > size-off {
			break // cut short
		}
		switch h.typ {
		case "moov":
			if h.offset+h.size > maxFMP4HeaderBox {
				return nil, fmt.Errorf("moov is larger than %d bytes", maxFMP4HeaderBox)
			}
			headerEnd = h.offset + h.size
			if err := ix.readHeader(r, headerEnd); err != nil {
				return nil, err
			}
		case "moof":
			if ix.Tracks == nil {
				return nil, ErrNoFMP4Header
			}
			n, err := ix.readFragment(r, h, size)
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return ix, nil
				}
				return nil, err
			}
			off = h.offset + h.size + n
			ix.ValidSize = off
			ix.Fragments++
			continue
		}
		off += h.size
		if ix.Tracks != nil && ix.ValidSize < headerEnd {
			ix.ValidSize = headerEnd
		}
	}
	if ix.Tracks == nil {
		return nil, ErrNoFMP4Header
	}
	return ix, nil
}

func (ix *FMP4Index) readHeader(r io.ReaderAt, end int64) error {
	b := make([]byte, end)
	if _, err := r.ReadAt(b, 0); err != nil {
		return fmt.Errorf("read moov: %w", err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("moov: %w", err)
	}
	if len(init.Tracks) == 0 {
		return fmt.Errorf("moov has no tracks")
	}
	for i, it := range init.Tracks {
		if it.ID != i+1 || it.TimeScale == 0 {
			return fmt.Errorf("moov: track %d has ID %d and timescale %d", i, it.ID, it.TimeScale)
		}
		ix.Tracks = append(ix.Tracks, &stream.Track{Index: i, Codec: it.Codec, ClockRate: int(it.TimeScale)})
		ix.Timescales = append(ix.Timescales, it.TimeScale)
	}
	ix.Samples = make([][]VODSample, len(ix.Tracks))
	return nil
}

// readFragment parses a moof and checks that the mdat after it holds its
// samples. It returns the mdat's size.
func (ix *FMP4Index) readFragment(r io.ReaderAt, moof fmp4Box, size int64) (int64, error) {
	if moof.size > maxFMP4MoofBox {
		return 0, fmt.Errorf("fragment at %d: moof of %d bytes is too large", moof.offset, moof.size)
	}
	mdatOff := moof.offset + moof.size
	mdat, err := readFMP4Box(r, mdatOff, size)
	if err != nil {
		return 0, io.ErrUnexpectedEOF
	}
	if mdat.typ != "mdat" {
		return 0, fmt.Errorf("fragment at %d: moof is followed by %q, not mdat", moof.offset, mdat.typ)
	}
	if mdat.size > size-mdatOff {
		return 0, io.ErrUnexpectedEOF
	}
	b := make([]byte, moof.size-moof.header)
	if _, err := r.ReadAt(b, moof.offset+moof.header); err != nil {
		return 0, io.ErrUnexpectedEOF
	}
	var added []int // samples appended per track, undone on error
	added = make([]int, len(ix.Samples))
	undo := func() {
		for i, n := range added {
			ix.Samples[i] = ix.Samples[i][:len(ix.Samples[i])-n]
		}
	}
	err = eachFMP4Child(b, func(typ string, body []byte) error {
		if typ != "traf" {
			return nil
		}
		return ix.readTraf(body, moof.offset, mdatOff+mdat.header, mdatOff+mdat.size, added)
	})
	if err != nil {
		undo()
		return 0, fmt.Errorf("fragment at %d: %w", moof.offset, err)
	}
	return mdat.size, nil
}

// eachFMP4Child calls fn for each box in b.
func eachFMP4Child(b []byte, fn func(typ string, body []byte) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return fmt.Errorf("truncated box header")
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		if size == 1 {
			if len(b) < 16 {
				return fmt.Errorf("truncated box header")
			}
			size, hdr = binary.BigEndian.Uint64(b[8:16]), 16
		} else if size == 0 {
			size = uint64(len(b))
		}
		if size < hdr || size > uint64(len(b)) {
			return fmt.Errorf("box %q has a bad size %d", typ, size)
		}
		if err := fn(typ, b[hdr:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// tfhd flags.
const (
	tfhdBaseDataOffset   = 0x01
	tfhdSampleDescIndex  = 0x02
	tfhdDefaultDuration  = 0x08
	tfhdDefaultSize      = 0x10
	tfhdDefaultFlags     = 0x20
	trunDataOffset       = 0x01
	trunFirstSampleFlags = 0x04
	trunDuration         = 0x100
	trunSize             = 0x200
	trunFlags            = 0x400
	trunCTS              = 0x800
	sampleNonSync        = 0x10000
)

type boxReader struct {
	b   []byte
	err error
}

func (r *boxReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = fmt.Errorf("box too short")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *boxReader) u64() uint64 {
	hi := uint64(r.u32())
	return hi<<32 | uint64(r.u32())
}

func (ix *FMP4Index) readTraf(b []byte, moofOff, dataStart, dataEnd int64, added []int) error {
	var (
		track                     = -1
		base                      = moofOff
		baseTime                  int64
		haveTime                  bool
		defDur, defSize, defFlags uint32
		next                      int64 = -1 // data offset after the previous trun
	)
	return eachFMP4Child(b, func(typ string, body []byte) error {
		r := &boxReader{b: body}
		switch typ {
		case "tfhd":
			flags := r.u32() & 0xffffff
			id := int(r.u32())
			if flags&tfhdBaseDataOffset != 0 {
				base = int64(r.u64())
			}
			if flags&tfhdSampleDescIndex != 0 {
				r.u32()
			}
			if flags&tfhdDefaultDuration != 0 {
				defDur = r.u32()
			}
			if flags&tfhdDefaultSize != 0 {
				defSize = r.u32()
			}
			if flags&tfhdDefaultFlags != 0 {
				defFlags = r.u32()
			}
			if id < 1 || id > len(ix.Samples) {
				return fmt.Errorf("tfhd names track %d of %d", id, len(ix.Samples))
			}
			track = id - 1
		case "tfdt":
			version := r.u32() >> 24
			if version == 1 {
				baseTime = int64(r.u64() & (1<<62 - 1))
			} else {
				baseTime = int64(r.u32())
			}
			haveTime = true
		case "trun":
			if track < 0 || !haveTime {
				return fmt.Errorf("trun before tfhd or tfdt")
			}
			flags := r.u32() & 0xffffff
			count := r.u32()
			pos := next
			if flags&trunDataOffset != 0 {
				pos = base + int64(int32(r.u32()))
			} else if pos < 0 {
				pos = dataStart
			}
			first := defFlags
			if flags&trunFirstSampleFlags != 0 {
				first = r.u32()
			}
			if r.err != nil {
				return r.err
			}
			perSample := 4 * int64(popcount32(flags&(trunDuration|trunSize|trunFlags|trunCTS)))
			if int64(count)*perSample > int64(len(r.b)) || len(ix.Samples[track])+int(count) > maxFMP4Samples {
				return fmt.Errorf("trun has %d samples, more than it can hold", count)
			}
			// Every sample takes at least one byte of the mdat: a count
			// beyond that is a damaged box, not a reason to allocate.
			if int64(count) > dataEnd-dataStart {
				return fmt.Errorf("trun has %d samples, more than its mdat of %d bytes can hold", count, dataEnd-dataStart)
			}
			dts := baseTime
			if ss := ix.Samples[track]; len(ss) > 0 && next >= 0 {
				last := ss[len(ss)-1]
				dts = last.DTS + int64(last.Duration)
			}
			for i := range count {
				dur, sz, fl := defDur, defSize, defFlags
				if i == 0 {
					fl = first
				}
				var cts int32
				if flags&trunDuration != 0 {
					dur = r.u32()
				}
				if flags&trunSize != 0 {
					sz = r.u32()
				}
				if flags&trunFlags != 0 {
					fl = r.u32()
				}
				if flags&trunCTS != 0 {
					cts = int32(r.u32())
				}
				if sz == 0 {
					return fmt.Errorf("sample %d of a trun has no data", i)
				}
				if pos < dataStart || pos+int64(sz) > dataEnd {
					return fmt.Errorf("sample data at %d+%d is outside the mdat", pos, sz)
				}
				ix.Samples[track] = append(ix.Samples[track], VODSample{
					DTS: dts, Duration: dur, PTSOffset: cts, Key: fl&sampleNonSync == 0,
					Offset: pos, Size: sz,
				})
				added[track]++
				dts += int64(dur)
				pos += int64(sz)
			}
			next = pos
		}
		return r.err
	})
}

func popcount32(v uint32) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}
