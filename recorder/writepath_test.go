package recorder

import (
	"runtime"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// writeMedia writes m as one archive in dir and returns the media bytes.
func writeMedia(tb testing.TB, m *testmedia.Media, dir string, loops int) (media int64) {
	tracks := []*stream.Track{m.Video, m.Audio}
	for i, tr := range tracks {
		tr.Index = i
	}
	a, err := openArchive(archiveSpec{
		root: dir, rel: "bench/a", format: FormatFMP4, stream: "bench/a", rendition: RenditionSource,
		session: "s", seq: 1, tracks: tracks, anchor: time.Now(), fragDur: time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	span := time.Duration(len(m.Frames)) * time.Second / time.Duration(m.FPS)
	for l := range loops {
		off := time.Duration(l) * span
		vi, ai := 0, 0
		for vi < len(m.Frames) || ai < len(m.AUs) {
			vt := time.Duration(vi) * time.Second / time.Duration(m.FPS)
			at := time.Duration(ai) * 1024 * time.Second / 48000
			var au *stream.AccessUnit
			if vi < len(m.Frames) && (ai >= len(m.AUs) || vt <= at) {
				au = &stream.AccessUnit{Track: m.Video, DTS: vt + off, PTS: vt + off, Key: m.Keys[vi], Payload: m.Frames[vi]}
				vi++
			} else {
				au = &stream.AccessUnit{Track: m.Audio, DTS: at + off, PTS: at + off, Key: true, Payload: m.AUs[ai]}
				ai++
			}
			media += int64(len(au.Payload))
			if err := a.write(au.Track.Index, au); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if rec := a.finish(0, false, nil, func(err error) string { return err.Error() }); rec.State != StateComplete {
		tb.Fatalf("archive: %+v", rec)
	}
	return media
}

// TestWritePathCopiesOnce checks that writing an archive allocates far
// less than the media it writes: payloads are copied once, into a reused
// fragment buffer, and never per frame.
func TestWritePathCopiesOnce(t *testing.T) {
	m := testmedia.MakeMedia(t, 4)
	dir := t.TempDir()
	writeMedia(t, m, dir, 1) // warm up the buffers' growth
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	media := writeMedia(t, m, t.TempDir(), 5)
	runtime.ReadMemStats(&after)
	ratio := float64(after.TotalAlloc-before.TotalAlloc) / float64(media)
	t.Logf("allocated %.3f bytes per media byte", ratio)
	if ratio > 0.5 {
		t.Fatalf("writing allocated %.2f bytes per media byte: media is copied per frame", ratio)
	}
}

// BenchmarkArchiveWrite reports the write path's throughput and the bytes
// it allocates per media byte.
func BenchmarkArchiveWrite(b *testing.B) {
	m := testmedia.MakeMedia(b, 4)
	var media int64
	b.ReportAllocs()
	for b.Loop() {
		media = writeMedia(b, m, b.TempDir(), 1)
	}
	b.SetBytes(media)
}
