package recorder

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sink is where an archive's bytes go: one fragmented MP4 file, or an HLS
// folder of CMAF segments.
type sink interface {
	// write appends one fragment; key says it starts with a video keyframe
	// (or the archive has no video). On error nothing of the fragment
	// stays behind.
	write(frag []byte, key bool, dur time.Duration) error
	// close ends the archive; complete says it ended cleanly or was cut
	// off on purpose (then an HLS playlist gets its end tag).
	close() error
	size() int64
}

// createExclusive creates path and its folders, never replacing a file: a
// taken name gets a "-2", "-3", ... suffix before its extension.
func createExclusive(path string) (*os.File, string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", err
	}
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext)
	for i := 1; ; i++ {
		p := path
		if i > 1 {
			p = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && i < 100 {
			continue
		}
		return f, p, err
	}
}

// fileSink writes a fragmented MP4 file. Each fragment goes out in one
// write, so a killed process leaves at most a partial last fragment, which
// is cut off again when writing fails or on the next start.
type fileSink struct {
	f     *os.File
	valid int64
}

func newFileSink(path string, init []byte) (*fileSink, string, error) {
	f, p, err := createExclusive(path)
	if err != nil {
		return nil, "", err
	}
	s := &fileSink{f: f}
	if err := s.append(init); err != nil {
		_ = f.Close()
		_ = os.Remove(p)
		return nil, "", err
	}
	return s, p, nil
}

func (s *fileSink) append(b []byte) error {
	if _, err := s.f.Write(b); err != nil {
		// Leave no partial fragment: a later one must follow a complete one.
		if terr := s.f.Truncate(s.valid); terr == nil {
			_, _ = s.f.Seek(s.valid, 0)
		}
		return err
	}
	s.valid += int64(len(b))
	return nil
}

func (s *fileSink) write(frag []byte, _ bool, _ time.Duration) error { return s.append(frag) }
func (s *fileSink) size() int64                                      { return s.valid }
func (s *fileSink) close() error                                     { return s.f.Close() }

// hlsSink writes an HLS folder: init.mp4, seg_NNNNN.m4s and index.m3u8.
// The playlist lists complete segments only and is replaced atomically,
// so it is valid after a crash at any point; close adds the end tag.
type hlsSink struct {
	dir      string
	complete func(path string) error // a file is done
	target   time.Duration
	seg      *fileSink
	segDur   time.Duration
	segs     []time.Duration
	total    int64
	maxDur   time.Duration
	initSize int64
}

// hlsSegmentTarget is the length of recorded HLS segments.
const hlsSegmentTarget = 4 * time.Second

func newHLSSink(dir string, init []byte, complete func(path string) error) (*hlsSink, string, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, "", err
	}
	d := dir
	for i := 2; ; i++ {
		err := os.Mkdir(d, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return nil, "", err
		}
		d = fmt.Sprintf("%s-%d", dir, i)
	}
	s := &hlsSink{dir: d, target: hlsSegmentTarget, complete: complete}
	initPath := filepath.Join(d, "init.mp4")
	if err := writeFileAtomic(initPath, init); err != nil {
		_ = os.RemoveAll(d)
		return nil, "", err
	}
	if err := complete(initPath); err != nil {
		_ = os.RemoveAll(d)
		return nil, "", err
	}
	s.initSize = int64(len(init))
	if err := s.writePlaylist(false); err != nil {
		_ = os.RemoveAll(d)
		return nil, "", err
	}
	return s, d, nil
}

func segmentFileName(i int) string { return fmt.Sprintf("seg_%05d.m4s", i) }

func (s *hlsSink) write(frag []byte, key bool, dur time.Duration) error {
	if s.seg != nil && key && s.segDur >= s.target {
		if err := s.endSegment(); err != nil {
			return err
		}
	}
	if s.seg == nil {
		f, _, err := createExclusive(filepath.Join(s.dir, segmentFileName(len(s.segs)+1)))
		if err != nil {
			return err
		}
		s.seg = &fileSink{f: f}
		s.segDur = 0
	}
	if err := s.seg.append(frag); err != nil {
		return err
	}
	s.segDur += dur
	return nil
}

func (s *hlsSink) endSegment() error {
	if s.seg == nil {
		return nil
	}
	seg := s.seg
	s.seg = nil
	err := seg.close()
	if seg.valid == 0 {
		_ = os.Remove(seg.f.Name())
		return err
	}
	s.segs = append(s.segs, s.segDur)
	s.maxDur = max(s.maxDur, s.segDur)
	s.total += seg.valid
	if err != nil {
		return err
	}
	if err := s.complete(seg.f.Name()); err != nil {
		return err
	}
	return s.writePlaylist(false)
}

func (s *hlsSink) size() int64 {
	n := s.total + s.initSize
	if s.seg != nil {
		n += s.seg.valid
	}
	return n
}

func (s *hlsSink) close() error {
	err := s.endSegment()
	return errors.Join(err, s.writePlaylist(true))
}

func (s *hlsSink) writePlaylist(ended bool) error {
	path := filepath.Join(s.dir, "index.m3u8")
	if err := writeFileAtomic(path, []byte(renderHLSPlaylist(s.segs, ended))); err != nil {
		return err
	}
	return s.complete(path)
}

// renderHLSPlaylist renders the playlist of a recorded HLS folder: an
// EVENT playlist while recording, VOD with an end tag once ended.
func renderHLSPlaylist(segs []time.Duration, ended bool) string {
	var b strings.Builder
	var longest time.Duration
	for _, d := range segs {
		longest = max(longest, d)
	}
	kind := "EVENT"
	if ended {
		kind = "VOD"
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-PLAYLIST-TYPE:%s\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n",
		max(1, int(math.Ceil(longest.Seconds()))), kind)
	for i, d := range segs {
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", d.Seconds(), segmentFileName(i+1))
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}

// writeFileAtomic replaces path with data: readers see the old or the new
// file, never a part.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
