package recorder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/stream"
)

// repair closes an archive that was being written when mps died: it cuts
// off a partial last fragment (or HLS segment), ends the HLS playlist, and
// records the duration that plays.
func (r *Recorder) repair(e *entry) {
	rec := e.rec
	log := r.log.With("stream", rec.Stream, "id", rec.ID, "path", rec.Path)
	var err error
	if rec.Format == FormatHLS {
		err = repairHLS(e.abs)
	} else {
		err = repairFile(e.abs)
	}
	m, oerr := openMedia(e.abs, rec.Format)
	if err == nil {
		err = oerr
	}
	if oerr == nil {
		defer m.Close()
		if ix, ierr := readIndex(m, m.size); ierr == nil {
			d := ix.duration()
			rec.Duration = d.Seconds()
			rec.End = rec.Start.Add(d)
			rec.Size = m.size
		} else if err == nil {
			err = ierr
		}
	}
	rec.State = StateComplete
	rec.Repaired = true
	if err != nil {
		rec.State = StateFailed
		rec.Error = fmt.Sprintf("repair: %v", err)
		log.Warn("unfinished recording could not be repaired", "error", err)
	} else {
		log.Info("unfinished recording repaired", "duration", rec.Duration, "size", rec.Size)
	}
	if werr := writeSidecar(e.sidecar, rec); werr != nil {
		log.Warn("recording metadata not written", "error", werr)
	}
	if merr := r.mirrorArchive(e.abs, e.sidecar); merr != nil {
		log.Warn("repaired recording not copied", "error", merr)
	}
	r.cat.set(e, rec, nil)
	if r.cfg.Finalize && rec.State == StateComplete {
		r.finalizeLater(e)
	}
}

// mirrorArchive hands every file of an archive (a file, or an HLS
// folder's files with its playlist last) and its metadata to the mirror.
func (r *Recorder) mirrorArchive(abs, sidecar string) error {
	if r.cfg.Mirror == nil {
		return nil
	}
	complete := archiveSpec{root: r.cfg.Dir, mirror: r.cfg.Mirror}.completer()
	var files []string
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		entries, err := os.ReadDir(abs)
		if err != nil {
			return err
		}
		var playlist string
		for _, de := range entries {
			switch name := de.Name(); {
			case name == "index.m3u8":
				playlist = filepath.Join(abs, name)
			case !de.IsDir() && !strings.HasSuffix(name, ".tmp"):
				files = append(files, filepath.Join(abs, name))
			}
		}
		if playlist != "" {
			files = append(files, playlist)
		}
	} else {
		files = append(files, abs)
	}
	for _, f := range append(files, sidecar) {
		if err := complete(f); err != nil {
			return err
		}
	}
	return nil
}

// repairFile cuts a fragmented MP4 after its last complete fragment.
func repairFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	ix, err := readIndex(f, fi.Size())
	if err != nil {
		return err
	}
	if ix.validSize < fi.Size() {
		return f.Truncate(ix.validSize)
	}
	return nil
}

// repairHLS cuts the newest segment after its last complete fragment,
// drops it when nothing is left, and ends the playlist.
func repairHLS(dir string) error {
	segs, err := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	if err != nil {
		return err
	}
	sort.Strings(segs)
	init, err := os.ReadFile(filepath.Join(dir, "init.mp4"))
	if err != nil {
		return err
	}
	var durs []time.Duration
	for _, seg := range segs {
		body, err := os.ReadFile(seg)
		if err != nil {
			return err
		}
		whole := append(append([]byte{}, init...), body...)
		ix, err := readIndex(bytesReaderAt(whole), int64(len(whole)))
		if err != nil {
			return err
		}
		keep := ix.validSize - int64(len(init))
		if keep <= 0 {
			if err := os.Remove(seg); err != nil {
				return err
			}
			continue
		}
		if keep < int64(len(body)) {
			if err := os.Truncate(seg, keep); err != nil {
				return err
			}
		}
		durs = append(durs, leadSpan(ix))
	}
	return writeFileAtomic(filepath.Join(dir, "index.m3u8"), []byte(renderHLSPlaylist(durs, true)))
}

// leadSpan is the length of the driving track's samples in an index.
func leadSpan(ix *archiveIndex) time.Duration {
	ss := ix.samples[driverOf(ix.tracks)]
	if len(ss) == 0 {
		return 0
	}
	last := ss[len(ss)-1]
	return stream.FromTicks(last.DTS+int64(last.Duration)-ss[0].DTS, ix.timescales[driverOf(ix.tracks)])
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, os.ErrInvalid
	}
	return n, nil
}

// finalizeLater writes the faststart MP4 of a complete archive in the
// background.
func (r *Recorder) finalizeLater(e *entry) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.finalize(e); err != nil {
			r.log.Warn("recording not finalized", "id", e.rec.ID, "path", e.rec.Path, "error", err)
		}
	}()
}

// finalize writes <archive>.faststart.mp4 next to an fMP4 archive (or in
// an HLS folder's parent), remuxed without re-encoding.
func (r *Recorder) finalize(e *entry) error {
	rec := r.cat.snapshot(e)
	m, err := openMedia(e.abs, rec.Format)
	if err != nil {
		return err
	}
	defer m.Close()
	ix, err := readIndex(m, m.size)
	if err != nil {
		return err
	}
	c, ok := selectClip(rec, ix, rec.Start.Add(-time.Hour), rec.End.Add(time.Hour))
	if !ok {
		return fmt.Errorf("nothing to finalize")
	}
	c.media = m
	out := strings.TrimSuffix(e.abs, ".mp4") + ".faststart.mp4"
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := writeMP4(f, []clip{c}); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	rel, _ := filepath.Rel(r.cfg.Dir, out)
	rec = r.cat.snapshot(e)
	rec.Finalized = filepath.ToSlash(rel)
	if fi, err := os.Stat(out); err == nil {
		rec.FinalizedSize = fi.Size()
	}
	r.cat.set(e, rec, nil)
	return writeSidecar(e.sidecar, rec)
}

// retentionLoop applies retention every interval.
func (r *Recorder) retentionLoop(ctx context.Context) {
	ret := r.cfg.Retention
	if ret.MaxAge <= 0 && ret.MaxSize <= 0 {
		return
	}
	t := time.NewTicker(ret.Interval)
	defer t.Stop()
	for {
		r.applyRetention(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// applyRetention deletes archives older than MaxAge, then the oldest
// archives of each stream (or application) above MaxSize. Archives being
// written are never deleted, but count towards the size.
func (r *Recorder) applyRetention(now time.Time) {
	ret := r.cfg.Retention
	all := r.cat.entries(nil)
	groups := map[string][]*entry{}
	var order []string
	for _, e := range all {
		rec := r.cat.snapshot(e)
		if ret.MaxAge > 0 && rec.State != StateRecording && now.Sub(rec.End) > ret.MaxAge {
			r.delete(e, "retention")
			continue
		}
		key := rec.Stream
		if ret.PerApplication {
			key, _, _ = strings.Cut(rec.Stream, "/")
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], e)
	}
	if ret.MaxSize <= 0 {
		return
	}
	for _, key := range order {
		var total int64
		for _, e := range groups[key] {
			rec := r.cat.snapshot(e)
			total += rec.Size + rec.FinalizedSize
		}
		for _, e := range groups[key] { // oldest first
			if total <= ret.MaxSize {
				break
			}
			rec := r.cat.snapshot(e)
			if rec.State == StateRecording {
				continue
			}
			r.delete(e, "retention")
			total -= rec.Size + rec.FinalizedSize
		}
	}
}

// delete removes an archive's files and reports it.
func (r *Recorder) delete(e *entry, reason string) {
	rec := r.cat.snapshot(e)
	r.cat.remove(rec.ID)
	r.stats.deleted.Add(1)
	removeArchiveFiles(e.files()...)
	removeEmptyDirs(r.cfg.Dir, filepath.Dir(e.abs))
	r.log.Info("recording deleted", "stream", rec.Stream, "id", rec.ID, "path", rec.Path, "size", rec.Size, "reason", reason)
	r.emit(events.RecordingDeleted, rec.Stream, map[string]any{
		"id": rec.ID, "path": rec.Path, "duration": rec.Duration, "size": rec.Size, "reason": reason,
	})
}

// removeEmptyDirs removes dir and its empty parents, up to root.
func removeEmptyDirs(root, dir string) {
	root = filepath.Clean(root)
	for dir = filepath.Clean(dir); dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			return
		}
	}
}
