package recorder

import (
	"cmp"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// entry is a recording the catalog knows, with where its files are.
type entry struct {
	rec     Recording
	abs     string // the .mp4 file or the HLS folder
	sidecar string
	active  *archive // set while the archive is being written
}

func (e *entry) files() []string {
	paths := []string{e.abs, e.sidecar}
	if e.rec.Finalized != "" {
		paths = append(paths, filepath.Join(filepath.Dir(e.abs), filepath.Base(e.rec.Finalized)))
	}
	return paths
}

// catalog indexes the recordings below the recordings folder. Its lock is
// a leaf.
type catalog struct {
	root string
	mu   sync.Mutex
	byID map[string]*entry
}

func newCatalog(root string) *catalog {
	return &catalog{root: root, byID: make(map[string]*entry)}
}

// scan reads every metadata file below the root. It returns the entries
// whose archive was still being written (the process died).
func (c *catalog) scan() (unfinished []*entry, problems []error) {
	_ = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, err)
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		abs := strings.TrimSuffix(p, ".json")
		if _, err := os.Stat(abs); err != nil {
			return nil // not an archive's metadata
		}
		rec, err := readSidecar(p)
		if err != nil {
			problems = append(problems, err)
			return nil
		}
		rel, err := filepath.Rel(c.root, abs)
		if err != nil {
			return nil
		}
		rec.Path = filepath.ToSlash(rel)
		if rec.Format == FormatHLS {
			rec.Path += "/index.m3u8"
		}
		e := &entry{rec: rec, abs: abs, sidecar: p}
		c.mu.Lock()
		c.byID[rec.ID] = e
		c.mu.Unlock()
		if rec.State == StateRecording {
			unfinished = append(unfinished, e)
		}
		return nil
	})
	return unfinished, problems
}

func (c *catalog) add(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID[e.rec.ID] = e
}

// snapshot returns the current metadata of an entry.
func (c *catalog) snapshot(e *entry) Recording {
	return e.rec
}

func (c *catalog) get(id string) (*entry, Recording, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return nil, Recording{}, false
	}
	return e, c.snapshot(e), true
}

// set records an entry's new metadata (and whether it is still written).
func (c *catalog) set(e *entry, rec Recording, active *archive) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.rec, e.active = rec, active
}

func (c *catalog) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byID, id)
}

// all returns every recording matching keep, oldest first.
func (c *catalog) all(keep func(*Recording) bool) []Recording {
	c.mu.Lock()
	out := make([]Recording, 0, len(c.byID))
	for _, e := range c.byID {
		rec := c.snapshot(e)
		if keep == nil || keep(&rec) {
			out = append(out, rec)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Recording) int {
		if n := a.Start.Compare(b.Start); n != 0 {
			return n
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// entries returns the entries matching keep, oldest first.
func (c *catalog) entries(keep func(*Recording) bool) []*entry {
	c.mu.Lock()
	out := make([]*entry, 0)
	for _, e := range c.byID {
		rec := c.snapshot(e)
		if keep == nil || keep(&rec) {
			out = append(out, e)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b *entry) int {
		if n := a.rec.Start.Compare(b.rec.Start); n != 0 {
			return n
		}
		return cmp.Compare(a.rec.ID, b.rec.ID)
	})
	return out
}
