package recorder

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mps-dev/mps/stream"
)

// archive is one archive being written: its sink, the tracks' pending
// samples and its metadata.
type archive struct {
	rec      Recording
	abs      string // the .mp4 file or the HLS folder
	sidecar  string
	sink     sink
	tracks   []*trackWriter
	enc      fragmentEncoder
	driver   int // the first video track, else 0
	video    bool
	base     time.Duration // session media time that is 0 in the archive
	fragDur  time.Duration
	anchor   time.Time               // wall-clock time of session media time 0
	flushes  int                     // fragments written
	complete func(path string) error // hands a done file to the mirror
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// archiveSpec is what a new archive needs.
type archiveSpec struct {
	root      string
	rel       string // from the path template, without extension
	format    string
	stream    string
	rendition string
	session   string
	seq       int
	tracks    []*stream.Track
	base      time.Duration
	anchor    time.Time
	fragDur   time.Duration
	mirror    func(path, rel string) error // nil: no mirror
}

// completer returns the function that hands a complete file of the
// archive to the mirror, or one that does nothing.
func (sp archiveSpec) completer() func(path string) error {
	if sp.mirror == nil {
		return func(string) error { return nil }
	}
	return func(path string) error {
		rel, err := filepath.Rel(sp.root, path)
		if err != nil {
			return err
		}
		if err := sp.mirror(path, filepath.ToSlash(rel)); err != nil {
			return fmt.Errorf("copy %s: %w", filepath.ToSlash(rel), err)
		}
		return nil
	}
}

func openArchive(sp archiveSpec) (*archive, error) {
	init, err := encodeInit(sp.tracks)
	if err != nil {
		return nil, err
	}
	a := &archive{
		base:     sp.base,
		fragDur:  sp.fragDur,
		anchor:   sp.anchor,
		driver:   0,
		complete: sp.completer(),
	}
	for i, t := range sp.tracks {
		a.tracks = append(a.tracks, newTrackWriter(t, sp.base))
		if t.IsVideo() && !a.video {
			a.video, a.driver = true, i
		}
	}
	target := filepath.Join(sp.root, filepath.FromSlash(sp.rel))
	switch sp.format {
	case FormatHLS:
		s, dir, err := newHLSSink(target, init, a.complete)
		if err != nil {
			return nil, err
		}
		a.sink, a.abs = s, dir
	default:
		s, file, err := newFileSink(target+".mp4", init)
		if err != nil {
			return nil, err
		}
		a.sink, a.abs = s, file
	}
	rel, err := filepath.Rel(sp.root, a.abs)
	if err != nil {
		return nil, err
	}
	a.sidecar = a.abs + ".json"
	a.rec = Recording{
		ID:        newID(),
		Stream:    sp.stream,
		Rendition: sp.rendition,
		Session:   sp.session,
		Seq:       sp.seq,
		Format:    sp.format,
		State:     StateRecording,
		Path:      filepath.ToSlash(rel),
		Start:     sp.anchor.Add(sp.base),
		End:       sp.anchor.Add(sp.base),
		Codecs:    []string{},
		Tracks:    describeTracks(sp.tracks),
	}
	if sp.format == FormatHLS {
		a.rec.Path += "/index.m3u8"
	}
	for _, t := range a.rec.Tracks {
		a.rec.Codecs = append(a.rec.Codecs, t.Codec)
	}
	a.rec.Size = a.sink.size()
	if err := writeSidecar(a.sidecar, a.rec); err != nil {
		_ = a.sink.close()
		removeArchiveFiles(a.abs, a.sidecar)
		return nil, err
	}
	return a, nil
}

func describeTracks(tracks []*stream.Track) []Track {
	out := make([]Track, 0, len(tracks))
	for _, t := range tracks {
		d := Track{Codec: t.CodecName()}
		if t.IsVideo() {
			d.Width, d.Height = t.Resolution()
		} else {
			d.SampleRate, d.Channels = t.AudioFormat()
		}
		out = append(out, d)
	}
	return out
}

// write adds an access unit of track i. A keyframe of the driving track
// starts a new fragment, and so does the fragment duration being reached.
func (a *archive) write(i int, au *stream.AccessUnit) error {
	tw := a.tracks[i]
	if i == a.driver && au.Key && (tw.pending != nil || len(tw.samples) > 0) {
		// The held-back frame before the keyframe ends where it starts.
		tw.flushPending(au.DTS, true)
		if err := a.flush(); err != nil {
			return err
		}
	}
	if !tw.push(au) {
		return nil
	}
	if a.tracks[a.driver].span() >= a.fragDur || (!a.video && tw.span() >= a.fragDur) {
		return a.flush()
	}
	return nil
}

// flush writes the finalized samples as one fragment.
func (a *archive) flush() error {
	lead := a.tracks[a.driver]
	key := !a.video || (len(lead.samples) > 0 && !lead.samples[0].IsNonSyncSample)
	dur := lead.span()
	frag, err := a.enc.encode(a.tracks)
	if err != nil || frag == nil {
		return err
	}
	if err := a.sink.write(frag, key, dur); err != nil {
		return fmt.Errorf("write %s: %w", a.rec.Path, err)
	}
	a.flushes++
	a.update()
	return nil
}

// update refreshes the size, duration and end time.
func (a *archive) update() {
	var d time.Duration
	for _, tw := range a.tracks {
		d = max(d, tw.duration())
	}
	a.rec.Size = a.sink.size()
	a.rec.Duration = d.Seconds()
	a.rec.End = a.rec.Start.Add(d)
}

// finish flushes everything and closes the archive. With exact, next is
// where the next session media would start (a rollover): the last video
// frame ends there, so the next archive follows without gap or overlap.
func (a *archive) finish(next time.Duration, exact bool, cause error, relative func(error) string) Recording {
	var err error
	if cause == nil {
		for _, tw := range a.tracks {
			tw.flushPending(next, exact)
		}
		err = a.flush()
	}
	err = joinErr(err, a.sink.close())
	a.update()
	a.rec.State = StateComplete
	if cause == nil {
		cause = err
	}
	if cause != nil {
		a.rec.State = StateFailed
		a.rec.Error = relative(cause)
	}
	if err := writeSidecar(a.sidecar, a.rec); err != nil && a.rec.Error == "" {
		a.rec.Error = fmt.Sprintf("write metadata: %v", err)
	}
	// A folder's files went to the mirror as they were done; a file
	// archive goes now, whole, then its metadata.
	if _, isFile := a.sink.(*fileSink); isFile {
		err = a.complete(a.abs)
	}
	if err = joinErr(err, a.complete(a.sidecar)); err != nil && a.rec.Error == "" {
		a.rec.Error = relative(err)
	}
	return a.rec
}

func joinErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func writeSidecar(path string, rec Recording) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func readSidecar(path string) (Recording, error) {
	var rec Recording
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", path, err)
	}
	if rec.ID == "" || rec.Stream == "" {
		return rec, fmt.Errorf("%s: not a recording's metadata", path)
	}
	return rec, nil
}

// removeArchiveFiles deletes an archive (file or folder) and its metadata.
func removeArchiveFiles(paths ...string) {
	for _, p := range paths {
		if p != "" {
			_ = os.RemoveAll(p)
		}
	}
}
