package packager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// VODFormat selects the manifests VOD.WriteFiles writes.
type VODFormat int

// VOD formats; combine them with |.
const (
	// VODHLS is index.m3u8 and the media playlists t{track}.m3u8.
	VODHLS VODFormat = 1 << iota
	// VODDASH is manifest.mpd.
	VODDASH
)

// WriteFiles writes v as static files into dir, an existing folder, with
// the names and content ServeVOD serves (without a query): the manifests
// of formats, then every init segment and segment they refer to (a
// segment that is a gap for a track is not written). Every URI in them is
// relative, so the folder plays as it is from any HTTP server. It returns
// the names written, manifests first. ctx stops it between files.
func (v *VOD) WriteFiles(ctx context.Context, dir string, formats VODFormat) ([]string, error) {
	if formats&(VODHLS|VODDASH) == 0 {
		return nil, errors.New("vod files: no format asked for")
	}
	if v == nil || len(v.Periods) == 0 {
		return nil, errors.New("vod files: nothing to play")
	}
	l, err := newVODLayout(v)
	if err != nil {
		return nil, err
	}
	if l.duration <= 0 {
		return nil, errors.New("vod files: nothing to play")
	}
	var names []string
	write := func(f vodFile, body []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := f.name()
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return fmt.Errorf("vod files: %w", err)
		}
		names = append(names, name)
		return nil
	}
	if formats&VODHLS != 0 {
		if err := write(vodFile{kind: fileMultivariant}, l.renderMultivariant("")); err != nil {
			return names, err
		}
		for t := range l.tracks {
			if err := write(vodFile{kind: fileMediaPlaylist, track: t}, l.renderMediaPlaylist(t, "")); err != nil {
				return names, err
			}
		}
	}
	if formats&VODDASH != 0 {
		if err := write(vodFile{kind: fileMPD}, l.renderMPD("")); err != nil {
			return names, err
		}
	}
	for _, pl := range l.periods {
		if pl.segments() == 0 {
			continue
		}
		for t, tm := range pl.tms {
			if err := write(vodFile{kind: fileInit, track: t, period: pl.index}, tm.init); err != nil {
				return names, err
			}
			for seg := range pl.segments() {
				data, err := pl.encodeSegment(t, seg)
				if errors.Is(err, errEmptySegment) {
					continue
				}
				if err != nil {
					return names, fmt.Errorf("vod files: %w", err)
				}
				if err := write(vodFile{kind: fileSegment, track: t, period: pl.index, index: seg}, data); err != nil {
					return names, err
				}
			}
		}
	}
	return names, nil
}
