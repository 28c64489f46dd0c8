package recorder

import (
	"io"
	"time"

	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/stream"
)

// archiveIndex is what a fragmented MP4 archive holds, read from its boxes
// without reading the media (see packager.ReadFMP4).
type archiveIndex struct {
	tracks     []*stream.Track
	timescales []uint32
	// samples lists each track's samples in decode order, with offsets
	// into the archive.
	samples [][]packager.VODSample
	// validSize is where the last complete fragment ends: a file cut
	// short by a crash plays up to here.
	validSize int64
	fragments int
}

// duration is the longest track's length.
func (ix *archiveIndex) duration() time.Duration {
	return (&packager.FMP4Index{Timescales: ix.timescales, Samples: ix.samples}).Duration()
}

// readIndex reads the boxes of an archive of size bytes. A missing or
// cut-off last fragment is not an error: validSize tells where the
// complete ones end.
func readIndex(r io.ReaderAt, size int64) (*archiveIndex, error) {
	ix, err := packager.ReadFMP4(r, size)
	if err != nil {
		return nil, err
	}
	return &archiveIndex{
		tracks:     ix.Tracks,
		timescales: ix.Timescales,
		samples:    ix.Samples,
		validSize:  ix.ValidSize,
		fragments:  ix.Fragments,
	}, nil
}

// trun flags the fragment writer sets.
const (
	trunDataOffset = 0x01
	trunDuration   = 0x100
	trunSize       = 0x200
	trunFlags      = 0x400
	trunCTS        = 0x800
)
