package packager

import (
	"strconv"
	"strings"
)

// fileKind is what a request below a stream's folder asks for.
type fileKind int

const (
	fileUnknown fileKind = iota
	fileMultivariant
	fileMPD
	fileMediaPlaylist
	fileInit
	fileSegment
	filePart
	fileSubsPlaylist
	fileSubsSegment
)

// mediaFile is a parsed request file name.
type mediaFile struct {
	kind   fileKind
	prefix string
	track  int
	msn    uint64
	part   int
	period int
}

const maxTracks = 64

// parseFileName parses the last element of a playback URL:
//
//	index.m3u8, manifest.mpd, t{track}.m3u8,
//	{prefix}_{track}_init{period}.mp4, {prefix}_{track}_{msn}.m4s,
//	{prefix}_{track}_{msn}_{part}.m4s,
//	subs.m3u8, {prefix}_subs_{msn}.vtt
func parseFileName(name string) (mediaFile, bool) {
	switch name {
	case "index.m3u8":
		return mediaFile{kind: fileMultivariant}, true
	case "manifest.mpd":
		return mediaFile{kind: fileMPD}, true
	case subsPlaylistName:
		return mediaFile{kind: fileSubsPlaylist}, true
	}
	if base, ok := strings.CutSuffix(name, ".vtt"); ok {
		f := strings.Split(base, "_")
		if len(f) != 3 || f[0] == "" || f[1] != "subs" || !digitsOnly(f[2]) {
			return mediaFile{}, false
		}
		msn, err := strconv.ParseUint(f[2], 10, 63)
		return mediaFile{kind: fileSubsSegment, prefix: f[0], msn: msn}, err == nil
	}
	if rest, ok := strings.CutPrefix(name, "t"); ok {
		if num, ok := strings.CutSuffix(rest, ".m3u8"); ok {
			track, ok := smallInt(num, maxTracks)
			return mediaFile{kind: fileMediaPlaylist, track: track}, ok
		}
	}
	if base, ok := strings.CutSuffix(name, ".mp4"); ok {
		f := strings.Split(base, "_")
		if len(f) != 3 || f[0] == "" {
			return mediaFile{}, false
		}
		track, ok1 := smallInt(f[1], maxTracks)
		pnum, ok2 := strings.CutPrefix(f[2], "init")
		period, ok3 := smallInt(pnum, 1<<30)
		return mediaFile{kind: fileInit, prefix: f[0], track: track, period: period}, ok1 && ok2 && ok3
	}
	if base, ok := strings.CutSuffix(name, ".m4s"); ok {
		f := strings.Split(base, "_")
		if len(f) < 3 || len(f) > 4 || f[0] == "" {
			return mediaFile{}, false
		}
		track, ok1 := smallInt(f[1], maxTracks)
		msn, err := strconv.ParseUint(f[2], 10, 63)
		if !ok1 || err != nil || !digitsOnly(f[2]) {
			return mediaFile{}, false
		}
		mf := mediaFile{kind: fileSegment, prefix: f[0], track: track, msn: msn}
		if len(f) == 4 {
			idx, ok := smallInt(f[3], 1<<20)
			if !ok {
				return mediaFile{}, false
			}
			mf.kind, mf.part = filePart, idx
		}
		return mf, true
	}
	return mediaFile{}, false
}

// smallInt parses a plain decimal number below limit: no sign, no spaces.
func smallInt(s string, limit int) (int, bool) {
	if !digitsOnly(s) || len(s) > 10 {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v >= limit {
		return 0, false
	}
	return v, true
}

func digitsOnly(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
