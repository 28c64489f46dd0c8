package recorder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// media is an archive's bytes as one fragmented MP4: the file itself, or
// an HLS folder's init segment followed by its segments.
type media struct {
	files []*os.File
	ends  []int64 // cumulative end offset of each file
	size  int64
	mod   time.Time
	pos   int64 // for Read and Seek
}

// openMedia opens the archive at abs (a file, or an HLS folder).
func openMedia(abs, format string) (*media, error) {
	paths := []string{abs}
	if format == FormatHLS {
		segs, err := filepath.Glob(filepath.Join(abs, "seg_*.m4s"))
		if err != nil {
			return nil, err
		}
		sort.Strings(segs)
		paths = append([]string{filepath.Join(abs, "init.mp4")}, segs...)
	}
	m := &media{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			m.Close()
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			m.Close()
			return nil, err
		}
		m.files = append(m.files, f)
		m.size += fi.Size()
		m.ends = append(m.ends, m.size)
		if fi.ModTime().After(m.mod) {
			m.mod = fi.ModTime()
		}
	}
	return m, nil
}

// ReadAt reads across file boundaries.
func (m *media) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) {
		if off >= m.size {
			return n, io.EOF
		}
		i := sort.Search(len(m.ends), func(i int) bool { return m.ends[i] > off })
		start := m.ends[i] - m.fileSize(i)
		want := min(int64(len(p)-n), m.ends[i]-off)
		k, err := m.files[i].ReadAt(p[n:n+int(want)], off-start)
		n += k
		off += int64(k)
		if err != nil && !(errors.Is(err, io.EOF) && int64(k) == want) {
			if errors.Is(err, io.EOF) {
				return n, io.ErrUnexpectedEOF // the file shrank
			}
			return n, err
		}
	}
	return n, nil
}

func (m *media) fileSize(i int) int64 {
	if i == 0 {
		return m.ends[0]
	}
	return m.ends[i] - m.ends[i-1]
}

func (m *media) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.pos)
	m.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (m *media) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.pos
	case io.SeekEnd:
		offset += m.size
	default:
		return 0, fmt.Errorf("bad whence %d", whence)
	}
	if offset < 0 {
		return 0, errors.New("seek before start")
	}
	m.pos = offset
	return offset, nil
}

// Close closes every file.
func (m *media) Close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	m.files = nil
	return errors.Join(errs...)
}

// indexCache keeps the indexes of recently read archives, keyed by path
// and size, so that segment requests do not parse an archive each time.
type indexCache struct {
	mu    sync.Mutex
	limit int
	items map[string]*archiveIndex
	order []string
}

func newIndexCache(limit int) *indexCache {
	return &indexCache{limit: limit, items: make(map[string]*archiveIndex)}
}

func (c *indexCache) get(abs string, m *media) (*archiveIndex, error) {
	key := fmt.Sprintf("%s\x00%d", abs, m.size)
	c.mu.Lock()
	ix, ok := c.items[key]
	c.mu.Unlock()
	if ok {
		return ix, nil
	}
	ix, err := readIndex(m, m.size)
	if err != nil {
		return nil, fmt.Errorf("read archive %s: %w", filepath.Base(abs), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; !ok {
		// Drop older versions of the same archive and the oldest entries.
		kept := c.order[:0]
		for _, k := range c.order {
			if strings.HasPrefix(k, abs+"\x00") {
				delete(c.items, k)
				continue
			}
			kept = append(kept, k)
		}
		c.order = kept
		for len(c.order) >= c.limit {
			delete(c.items, c.order[0])
			c.order = c.order[1:]
		}
		c.items[key] = ix
		c.order = append(c.order, key)
	}
	return ix, nil
}
