package e2e

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// resolve resolves ref against base.
func resolve(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u, err := b.Parse(ref)
	if err != nil {
		t.Fatalf("bad URI %q in %s: %v", ref, base, err)
	}
	return u.String()
}

// withQuery adds query parameters to u.
func withQuery(t *testing.T, u string, kv ...string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// getBytes GETs u and returns status and body (hang guard: the client's timeout).
func getBytes(t *testing.T, u string) (int, []byte) {
	t.Helper()
	code, body := httpGet(t, u)
	return code, []byte(body)
}

// hasBox reports whether an fMP4 byte string has a top-level box of type typ.
func hasBox(b []byte, typ string) bool {
	for len(b) >= 8 {
		size := int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
		if string(b[4:8]) == typ {
			return true
		}
		if size == 1 && len(b) >= 16 {
			size = int(uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
				uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]))
		}
		if size < 8 || size > len(b) {
			return false
		}
		b = b[size:]
	}
	return false
}

// TestLLHLS checks the LL-HLS tags a low-latency player needs, the media
// the playlist points to, and blocking playlist reload.
func TestLLHLS(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: fastConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/ll"
	ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 90 * time.Second})
	mediaURL, pl := waitForPlaylist(t, s, name, 3)

	t.Run("Multivariant", func(t *testing.T) {
		code, body := httpGet(t, s.HLSURL(name))
		if code != 200 {
			t.Fatalf("GET %s: %d", s.HLSURL(name), code)
		}
		if !strings.HasPrefix(body, "#EXTM3U") {
			t.Errorf("multivariant playlist does not start with #EXTM3U:\n%s", body)
		}
		var inf string
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "#EXT-X-STREAM-INF:") {
				inf = line
				break
			}
		}
		if inf == "" {
			t.Fatalf("no #EXT-X-STREAM-INF in the multivariant playlist:\n%s", body)
		}
		a := attrs(strings.TrimPrefix(inf, "#EXT-X-STREAM-INF:"))
		if a["BANDWIDTH"] == "" {
			t.Errorf("EXT-X-STREAM-INF has no BANDWIDTH (required): %s", inf)
		}
		codecs := a["CODECS"]
		if !strings.Contains(codecs, "avc1.") || !strings.Contains(codecs, "mp4a.40.2") {
			t.Errorf("EXT-X-STREAM-INF CODECS=%q, want avc1.* and mp4a.40.2: %s", codecs, inf)
		}
		if a["RESOLUTION"] != "" && a["RESOLUTION"] != "640x360" {
			t.Errorf("EXT-X-STREAM-INF RESOLUTION=%q, want 640x360", a["RESOLUTION"])
		}
		if ct := contentType(t, s.HLSURL(name)); !isM3U8Type(ct) {
			t.Errorf("multivariant playlist Content-Type %q, want application/vnd.apple.mpegurl", ct)
		}
		// Players on web pages of other origins need CORS.
		req, _ := http.NewRequest(http.MethodGet, s.HLSURL(name), nil)
		req.Header.Set("Origin", "http://player.example")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "*" && acao != "http://player.example" {
			t.Errorf("playlist Access-Control-Allow-Origin %q: a player on another origin cannot read it", acao)
		}
	})

	t.Run("Tags", func(t *testing.T) {
		raw := pl.Raw
		for _, tag := range []string{"#EXTM3U", "#EXT-X-TARGETDURATION", "#EXT-X-SERVER-CONTROL", "#EXT-X-PART-INF",
			"#EXT-X-MAP", "#EXTINF", "#EXT-X-PART", "#EXT-X-PRELOAD-HINT", "#EXT-X-MEDIA-SEQUENCE"} {
			if pl.Tags[tag] == 0 {
				t.Errorf("media playlist has no %s", tag)
			}
		}
		if pl.ServerControl["CAN-BLOCK-RELOAD"] != "YES" {
			t.Errorf("EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD=%q, want YES", pl.ServerControl["CAN-BLOCK-RELOAD"])
		}
		partTarget, err := strconv.ParseFloat(pl.PartInf["PART-TARGET"], 64)
		if err != nil || partTarget <= 0 {
			t.Errorf("EXT-X-PART-INF PART-TARGET=%q is not a positive number", pl.PartInf["PART-TARGET"])
		}
		if phb, err := strconv.ParseFloat(pl.ServerControl["PART-HOLD-BACK"], 64); err != nil {
			t.Errorf("EXT-X-SERVER-CONTROL has no PART-HOLD-BACK (required with parts): %v", pl.ServerControl)
		} else if partTarget > 0 && phb < 2*partTarget {
			t.Errorf("PART-HOLD-BACK=%v is less than twice PART-TARGET=%v", phb, partTarget)
		}
		if pl.Version < 6 {
			t.Errorf("EXT-X-VERSION=%d; EXT-X-PART/EXT-X-MAP in a live fMP4 playlist need >= 6", pl.Version)
		}
		if pl.PreloadHint["TYPE"] != "PART" || pl.PreloadHint["URI"] == "" {
			t.Errorf("EXT-X-PRELOAD-HINT %v, want TYPE=PART with a URI", pl.PreloadHint)
		}
		if pl.Map["URI"] == "" {
			t.Errorf("EXT-X-MAP has no URI")
		}
		if pl.Endlist {
			t.Errorf("a live playlist has EXT-X-ENDLIST")
		}
		// Segment and part durations must respect the targets (RFC 8216bis 4.4.3.1, 4.4.4.9).
		for _, seg := range pl.Segments {
			if int(math.Round(seg.Duration)) > pl.TargetDuration {
				t.Errorf("segment %d EXTINF %.3f rounds above EXT-X-TARGETDURATION %d", seg.MSN, seg.Duration, pl.TargetDuration)
			}
			if len(seg.Parts) > 0 {
				var sum float64
				for _, p := range seg.Parts {
					sum += p.Duration
					if partTarget > 0 && p.Duration > partTarget+0.001 {
						t.Errorf("segment %d part %d DURATION=%.5f exceeds PART-TARGET=%v", seg.MSN, p.Index, p.Duration, partTarget)
					}
				}
				if math.Abs(sum-seg.Duration) > 0.05 {
					t.Errorf("segment %d: parts add up to %.3f s but EXTINF is %.3f s", seg.MSN, sum, seg.Duration)
				}
				if !seg.Parts[0].Independent {
					t.Errorf("segment %d: first part is not INDEPENDENT=YES (segments start on keyframes)", seg.MSN)
				}
			}
		}
		if t.Failed() {
			t.Logf("media playlist %s:\n%s", mediaURL, raw)
		}
		if ct := contentType(t, mediaURL); !isM3U8Type(ct) {
			t.Errorf("media playlist Content-Type %q, want application/vnd.apple.mpegurl", ct)
		}
	})

	t.Run("Media", func(t *testing.T) {
		// The init segment, a complete segment and a part must be fMP4.
		if pl.Map["URI"] == "" || len(pl.Segments) == 0 {
			t.Skip("no EXT-X-MAP or segments (reported by Tags)")
		}
		initURL := resolve(t, mediaURL, pl.Map["URI"])
		code, b := getBytes(t, initURL)
		if code != 200 || !hasBox(b, "ftyp") || !hasBox(b, "moov") {
			t.Errorf("init segment %s: %d, %d bytes, ftyp=%v moov=%v", initURL, code, len(b), hasBox(b, "ftyp"), hasBox(b, "moov"))
		}
		seg := pl.Segments[len(pl.Segments)-1]
		segURL := resolve(t, mediaURL, seg.URI)
		code, b = getBytes(t, segURL)
		if code != 200 || !hasBox(b, "moof") || !hasBox(b, "mdat") {
			t.Errorf("segment %s: %d, %d bytes, moof=%v mdat=%v", segURL, code, len(b), hasBox(b, "moof"), hasBox(b, "mdat"))
		}
		if len(seg.Parts) > 0 {
			partURL := resolve(t, mediaURL, seg.Parts[0].URI)
			code, pb := getBytes(t, partURL)
			if code != 200 || !hasBox(pb, "moof") || !hasBox(pb, "mdat") {
				t.Errorf("part %s: %d, %d bytes, moof=%v mdat=%v", partURL, code, len(pb), hasBox(pb, "moof"), hasBox(pb, "mdat"))
			}
			// A segment is its parts, byte for byte, or at least holds them.
			if code == 200 && len(b) > 0 && !bytes.Contains(b, pb[:min(len(pb), 4096)]) {
				t.Logf("note: segment %s does not contain its first part's bytes (separate fragments)", segURL)
			}
		}
		// The preload hint is a part that is not ready yet: the server holds
		// the request and answers it when the part is complete.
		if hint := pl.PreloadHint["URI"]; hint != "" {
			hintURL := resolve(t, mediaURL, hint)
			code, hb := getBytes(t, hintURL)
			if code != 200 || !hasBox(hb, "moof") || !hasBox(hb, "mdat") {
				t.Errorf("preload hint %s: %d, %d bytes, moof=%v mdat=%v", hintURL, code, len(hb), hasBox(hb, "moof"), hasBox(hb, "mdat"))
			}
		}
	})

	t.Run("BlockingReload", func(t *testing.T) {
		cur, err := fetchMediaPlaylist(ctx, mediaURL)
		if err != nil {
			t.Fatal(err)
		}
		// 1. The next part of the segment being built.
		msn, part := cur.NextMSN(), len(cur.TrailingParts)
		blockingReload(t, mediaURL, cur, msn, part)
		// 2. The first part of the segment after that one (the brief's
		// _HLS_msn=<next msn>&_HLS_part=0), which takes about a segment.
		cur, err = fetchMediaPlaylist(ctx, mediaURL)
		if err != nil {
			t.Fatal(err)
		}
		blockingReload(t, mediaURL, cur, cur.NextMSN()+1, 0)
		// 3. A whole segment: _HLS_msn alone waits for that segment to be complete.
		cur, err = fetchMediaPlaylist(ctx, mediaURL)
		if err != nil {
			t.Fatal(err)
		}
		want := cur.NextMSN()
		u := withQuery(t, mediaURL, "_HLS_msn", strconv.Itoa(want))
		code, body := httpGet(t, u)
		if code != 200 {
			t.Errorf("GET %s: %d %s", u, code, body)
		} else if got := parseMediaPlaylist(body); got.LastMSN() < want {
			t.Errorf("GET %s answered before segment %d was complete (last segment %d):\n%s", u, want, got.LastMSN(), body)
		}
	})

	t.Run("BadRequests", func(t *testing.T) {
		cur, err := fetchMediaPlaylist(ctx, mediaURL)
		if err != nil {
			t.Fatal(err)
		}
		// RFC 8216bis 6.2.5.2: an _HLS_msn more than two segments ahead
		// SHOULD get 400 at once; _HLS_part without _HLS_msn MUST get 400.
		far := withQuery(t, mediaURL, "_HLS_msn", strconv.Itoa(cur.NextMSN()+100))
		if code, body := httpGet(t, far); code != http.StatusBadRequest {
			t.Errorf("GET %s (100 segments ahead): %d, want 400\n%.300s", far, code, body)
		}
		partOnly := withQuery(t, mediaURL, "_HLS_part", "0")
		if code, body := httpGet(t, partOnly); code != http.StatusBadRequest {
			t.Errorf("GET %s (_HLS_part without _HLS_msn): %d, want 400\n%.300s", partOnly, code, body)
		}
		junk := withQuery(t, mediaURL, "_HLS_msn", "abc")
		if code, body := httpGet(t, junk); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400\n%.300s", junk, code, body)
		}
	})
}

// blockingReload asks for part `part` of segment msn, which cur does not
// list yet, and checks the answer lists it.
func blockingReload(t *testing.T, mediaURL string, cur *mediaPlaylist, msn, part int) {
	t.Helper()
	if cur.HasPart(msn, part) {
		t.Fatalf("test bug: part %d.%d is already listed", msn, part)
	}
	u := withQuery(t, mediaURL, "_HLS_msn", strconv.Itoa(msn), "_HLS_part", strconv.Itoa(part))
	start := time.Now()
	code, body := httpGet(t, u)
	held := time.Since(start)
	if code != 200 {
		t.Fatalf("GET %s: %d, want 200\n%s", u, code, body)
	}
	got := parseMediaPlaylist(body)
	// When part is past the end of segment msn, the server answers with part
	// 0 of the next segment (RFC 8216bis 6.2.5.2).
	if !got.HasPart(msn, part) && !(got.LastMSN() >= msn && got.HasPart(msn+1, 0)) {
		t.Errorf("GET %s (held %v) answered with a playlist that does not list part %d of segment %d (before: next msn %d, %d parts):\n%s",
			u, held.Round(time.Millisecond), part, msn, cur.NextMSN(), len(cur.TrailingParts), body)
		return
	}
	t.Logf("blocking reload for %d.%d answered after %v", msn, part, held.Round(time.Millisecond))
}

func contentType(t *testing.T, u string) string {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.Header.Get("Content-Type")
}

func isM3U8Type(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "application/vnd.apple.mpegurl") || strings.HasPrefix(ct, "application/x-mpegurl") || strings.HasPrefix(ct, "audio/mpegurl")
}
