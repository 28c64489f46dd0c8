package packager

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// Subtitles is a WebVTT subtitles rendition of a VOD output folder.
type Subtitles struct {
	// Name is what players show, e.g. "English".
	Name string
	// Language is its BCP 47 tag, e.g. "en" or "pt-BR".
	Language string
	// VTT is the file name of the WebVTT file in the output folder.
	VTT string
	// Default makes it the rendition players show without being asked.
	Default bool
}

// subtitlesGroup is the GROUP-ID of the HLS subtitle renditions.
const subtitlesGroup = "subs"

var (
	subsLangRe   = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)
	subsMediaRe  = regexp.MustCompile(`^#EXT-X-MEDIA:.*TYPE=SUBTITLES`)
	subsLangAttr = regexp.MustCompile(`LANGUAGE="([^"]*)"`)
	subsTextSet  = regexp.MustCompile(`(?s)[ \t]*<AdaptationSet [^>]*contentType="text"[^>]*>.*?</AdaptationSet>\n?`)
	subsSetID    = regexp.MustCompile(`<AdaptationSet id="(\d+)"`)
	subsSetLang  = regexp.MustCompile(`\blang="([^"]*)"`)
	mpdDuration  = regexp.MustCompile(`mediaPresentationDuration="PT(?:(\d+)H)?(?:(\d+)M)?(?:([0-9.]+)S)?"`)
	timestampMap = regexp.MustCompile(`^X-TIMESTAMP-MAP=`)
)

// SubtitlesPlaylist is the name of the HLS subtitles media playlist of
// language lang that AddSubtitles writes.
func SubtitlesPlaylist(lang string) string { return "subs-" + lang + ".m3u8" }

// AddSubtitles adds s, a WebVTT file already in dir, to the HLS and DASH
// VOD output that VOD.WriteFiles wrote there:
//
//   - HLS (when index.m3u8 exists): a subtitles media playlist
//     SubtitlesPlaylist(s.Language) with the VTT as its one segment,
//     lasting the whole presentation; an EXT-X-MEDIA TYPE=SUBTITLES
//     rendition in group "subs" in index.m3u8, and SUBTITLES="subs" on
//     every EXT-X-STREAM-INF.
//   - DASH (when manifest.mpd exists): a text AdaptationSet (text/vtt,
//     lang) in every Period, whose one Representation has the VTT as its
//     BaseURL.
//
// It also sets the VTT's X-TIMESTAMP-MAP header to
// MPEGTS:<the first video sample's PTS in 90 kHz units>,LOCAL:00:00:00.000,
// so that HLS players (hls.js, Safari) show cue time 0 at the start of the
// presentation whatever the segments' base media decode time is.
//
// A rendition of the same language is replaced, so calling it again is
// harmless; several languages may be added. With s.Default the others
// lose their DEFAULT. A folder with neither index.m3u8 nor manifest.mpd
// is an error.
func AddSubtitles(dir string, s Subtitles) error {
	if !subsLangRe.MatchString(s.Language) {
		return fmt.Errorf("subtitles: language %q: want a BCP 47 tag such as en or pt-BR", s.Language)
	}
	if s.Name == "" {
		s.Name = s.Language
	}
	if strings.ContainsAny(s.Name, "\"\r\n") {
		return fmt.Errorf("subtitles: name %q: must not hold quotes or line breaks", s.Name)
	}
	if s.VTT == "" || s.VTT != filepath.Base(s.VTT) || s.VTT == "." || s.VTT == ".." || strings.ContainsAny(s.VTT, "\"\\<>&?#\r\n") {
		return fmt.Errorf("subtitles: vtt %q: want a plain file name in the output folder", s.VTT)
	}
	vttPath := filepath.Join(dir, s.VTT)
	vtt, err := os.ReadFile(vttPath)
	if err != nil {
		return fmt.Errorf("subtitles: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimPrefix(vtt, []byte("\xef\xbb\xbf")), []byte("WEBVTT")) {
		return fmt.Errorf("subtitles: %s is not a WebVTT file", s.VTT)
	}
	index, errHLS := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if errHLS != nil && !errors.Is(errHLS, fs.ErrNotExist) {
		return fmt.Errorf("subtitles: %w", errHLS)
	}
	mpd, errDASH := os.ReadFile(filepath.Join(dir, "manifest.mpd"))
	if errDASH != nil && !errors.Is(errDASH, fs.ErrNotExist) {
		return fmt.Errorf("subtitles: %w", errDASH)
	}
	hasHLS, hasDASH := errHLS == nil, errDASH == nil
	if !hasHLS && !hasDASH {
		return fmt.Errorf("subtitles: %s holds neither index.m3u8 nor manifest.mpd", dir)
	}

	// The presentation's duration and start, from the HLS media playlists
	// (the first variant's) or else the MPD.
	var duration time.Duration
	var startPTS int64 // in 90 kHz units
	if hasHLS {
		duration, startPTS, err = hlsPresentation(dir, index)
		if err != nil {
			return fmt.Errorf("subtitles: %w", err)
		}
	} else {
		duration, err = mpdPresentationDuration(mpd)
		if err != nil {
			return fmt.Errorf("subtitles: %w", err)
		}
	}

	if err := writeFileAtomic(vttPath, withTimestampMap(vtt, startPTS)); err != nil {
		return fmt.Errorf("subtitles: %w", err)
	}
	if hasHLS {
		playlist := SubtitlesPlaylist(s.Language)
		if err := writeFileAtomic(filepath.Join(dir, playlist), subtitlesMediaPlaylist(s.VTT, duration)); err != nil {
			return fmt.Errorf("subtitles: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, "index.m3u8"), addSubtitlesHLS(index, s, playlist)); err != nil {
			return fmt.Errorf("subtitles: %w", err)
		}
	}
	if hasDASH {
		if err := writeFileAtomic(filepath.Join(dir, "manifest.mpd"), addSubtitlesDASH(mpd, s)); err != nil {
			return fmt.Errorf("subtitles: %w", err)
		}
	}
	return nil
}

// writeFileAtomic replaces name with data through a temporary file, so
// that a player never reads half a manifest.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// withTimestampMap returns vtt with its X-TIMESTAMP-MAP header line set
// to map cue time 0 to MPEG time mpegts (90 kHz).
func withTimestampMap(vtt []byte, mpegts int64) []byte {
	text := normalizeNewlines(vtt)
	header, body, _ := strings.Cut(text, "\n\n")
	lines := strings.Split(header, "\n")
	kept := lines[:1] // the WEBVTT line
	kept = append(kept, fmt.Sprintf("X-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000", mpegts&(1<<33-1)))
	for _, l := range lines[1:] {
		if !timestampMap.MatchString(l) {
			kept = append(kept, l)
		}
	}
	return []byte(strings.Join(kept, "\n") + "\n\n" + body)
}

// normalizeNewlines turns CRLF and lone CR line breaks into LF.
func normalizeNewlines(b []byte) string {
	return strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\r", "\n")
}

// subtitlesMediaPlaylist is a VOD media playlist with one segment, the
// VTT file, lasting the whole presentation.
func subtitlesMediaPlaylist(vtt string, d time.Duration) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", max(1, int(math.Ceil(d.Seconds()))))
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n#EXT-X-ENDLIST\n", seconds(d), vtt)
	return []byte(b.String())
}

// addSubtitlesHLS adds the rendition to a multivariant playlist, replacing
// one of the same language.
func addSubtitlesHLS(index []byte, s Subtitles, playlist string) []byte {
	def := "NO"
	if s.Default {
		def = "YES"
	}
	media := fmt.Sprintf("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"%s\",NAME=\"%s\",LANGUAGE=\"%s\",DEFAULT=%s,AUTOSELECT=YES,FORCED=NO,URI=\"%s\"",
		subtitlesGroup, s.Name, s.Language, def, playlist)
	lines := strings.Split(strings.TrimRight(normalizeNewlines(index), "\n"), "\n")
	var out []string
	placed := false
	for _, l := range lines {
		switch {
		case subsMediaRe.MatchString(l):
			if m := subsLangAttr.FindStringSubmatch(l); m != nil && strings.EqualFold(m[1], s.Language) {
				continue // replaced
			}
			if s.Default {
				l = strings.Replace(l, "DEFAULT=YES", "DEFAULT=NO", 1)
			}
		case strings.HasPrefix(l, "#EXT-X-STREAM-INF:"):
			if !placed {
				out = append(out, media)
				placed = true
			}
			if !strings.Contains(l, `SUBTITLES="`) {
				l += `,SUBTITLES="` + subtitlesGroup + `"`
			}
		}
		out = append(out, l)
	}
	if !placed {
		out = append(out, media)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

// addSubtitlesDASH adds a text AdaptationSet to every Period of an MPD,
// replacing one of the same language.
func addSubtitlesDASH(mpd []byte, s Subtitles) []byte {
	text := string(mpd)
	text = subsTextSet.ReplaceAllStringFunc(text, func(set string) string {
		if m := subsSetLang.FindStringSubmatch(set); m != nil && strings.EqualFold(m[1], s.Language) {
			return ""
		}
		return set
	})
	var b strings.Builder
	for {
		end := strings.Index(text, "</Period>")
		if end < 0 {
			b.WriteString(text)
			break
		}
		// Back up to the start of the line that closes the Period.
		lineStart := strings.LastIndexByte(text[:end], '\n') + 1
		if strings.TrimSpace(text[lineStart:end]) != "" {
			lineStart = end
		}
		period := text[:lineStart]
		id := 0
		if start := strings.LastIndex(period, "<Period"); start >= 0 {
			for _, m := range subsSetID.FindAllStringSubmatch(period[start:], -1) {
				if n, err := strconv.Atoi(m[1]); err == nil {
					id = max(id, n+1)
				}
			}
		}
		b.WriteString(period)
		b.WriteString(subtitlesAdaptationSet(id, s))
		b.WriteString(text[lineStart : end+len("</Period>")])
		text = text[end+len("</Period>"):]
	}
	return []byte(b.String())
}

func subtitlesAdaptationSet(id int, s Subtitles) string {
	e := html.EscapeString
	role := "subtitle"
	var b strings.Builder
	fmt.Fprintf(&b, `    <AdaptationSet id="%d" contentType="text" mimeType="text/vtt" lang="%s">`+"\n", id, e(s.Language))
	fmt.Fprintf(&b, `      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="%s"/>`+"\n", role)
	fmt.Fprintf(&b, `      <Label>%s</Label>`+"\n", e(s.Name))
	fmt.Fprintf(&b, `      <Representation id="subs-%s" bandwidth="256">`+"\n", e(s.Language))
	fmt.Fprintf(&b, `        <BaseURL>%s</BaseURL>`+"\n", e(s.VTT))
	b.WriteString("      </Representation>\n    </AdaptationSet>\n")
	return b.String()
}

var (
	hlsStreamInfURI = regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:[^\n]*\n([^#\n][^\n]*)$`)
	hlsMapURI       = regexp.MustCompile(`(?m)^#EXT-X-MAP:URI="([^"]+)"`)
	hlsExtinf       = regexp.MustCompile(`(?m)^#EXTINF:([0-9.]+),[^\n]*\n([^#\n][^\n]*)$`)
)

// hlsPresentation reads the first variant's media playlist: the sum of
// its segments' durations, and the PTS of its first sample in 90 kHz
// units (from the init segment's timescale and the first segment's tfdt).
func hlsPresentation(dir string, index []byte) (time.Duration, int64, error) {
	m := hlsStreamInfURI.FindSubmatch(index)
	if m == nil {
		return 0, 0, errors.New("index.m3u8 has no variant")
	}
	name := strings.TrimSpace(string(m[1]))
	if name != filepath.Base(name) {
		return 0, 0, fmt.Errorf("index.m3u8: variant %q is not in the folder", name)
	}
	pl, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, 0, err
	}
	var d time.Duration
	var first string
	for _, seg := range hlsExtinf.FindAllSubmatch(pl, -1) {
		f, err := strconv.ParseFloat(string(seg[1]), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: EXTINF %q: %w", name, seg[1], err)
		}
		d += time.Duration(math.Round(f * float64(time.Second)))
		if first == "" {
			first = strings.TrimSpace(string(seg[2]))
		}
	}
	if d <= 0 {
		return 0, 0, fmt.Errorf("%s: no segments", name)
	}
	im := hlsMapURI.FindSubmatch(pl)
	if im == nil {
		return d, 0, nil // not fMP4: nothing to align with
	}
	pts, err := firstPTS90k(dir, string(im[1]), first)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, pts, nil
}

// firstPTS90k is the presentation time of the first sample of an fMP4
// segment, in 90 kHz units.
func firstPTS90k(dir, initName, segName string) (int64, error) {
	if initName != filepath.Base(initName) || segName != filepath.Base(segName) {
		return 0, errors.New("segments outside the folder")
	}
	initData, err := os.ReadFile(filepath.Join(dir, initName))
	if err != nil {
		return 0, err
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(initData)); err != nil {
		return 0, fmt.Errorf("init segment %s: %w", initName, err)
	}
	segData, err := os.ReadFile(filepath.Join(dir, segName))
	if err != nil {
		return 0, err
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(segData); err != nil {
		return 0, fmt.Errorf("segment %s: %w", segName, err)
	}
	if len(parts) == 0 || len(parts[0].Tracks) == 0 {
		return 0, fmt.Errorf("segment %s: no fragment", segName)
	}
	pt := parts[0].Tracks[0]
	var ts uint32
	for _, it := range init.Tracks {
		if it.ID == pt.ID {
			ts = it.TimeScale
		}
	}
	if ts == 0 {
		return 0, fmt.Errorf("segment %s: track %d is not in %s", segName, pt.ID, initName)
	}
	pts := int64(pt.BaseTime)
	if len(pt.Samples) > 0 {
		pts += int64(pt.Samples[0].PTSOffset)
	}
	return int64(math.Round(float64(pts) * 90000 / float64(ts))), nil
}

// mpdPresentationDuration reads an MPD's mediaPresentationDuration.
func mpdPresentationDuration(mpd []byte) (time.Duration, error) {
	m := mpdDuration.FindSubmatch(mpd)
	if m == nil {
		return 0, errors.New("manifest.mpd has no mediaPresentationDuration")
	}
	var d float64
	for i, unit := range []float64{3600, 60, 1} {
		if len(m[i+1]) == 0 {
			continue
		}
		f, err := strconv.ParseFloat(string(m[i+1]), 64)
		if err != nil {
			return 0, fmt.Errorf("manifest.mpd: mediaPresentationDuration: %w", err)
		}
		d += f * unit
	}
	if d <= 0 {
		return 0, errors.New("manifest.mpd: the presentation is empty")
	}
	return time.Duration(math.Round(d * float64(time.Second))), nil
}
