package packager

import "testing"

func TestParseFileName(t *testing.T) {
	cases := map[string]mediaFile{
		"index.m3u8":       {kind: fileMultivariant},
		"manifest.mpd":     {kind: fileMPD},
		"t1.m3u8":          {kind: fileMediaPlaylist, track: 1},
		"ab12_0_init3.mp4": {kind: fileInit, prefix: "ab12", period: 3},
		"ab12_1_42.m4s":    {kind: fileSegment, prefix: "ab12", track: 1, msn: 42},
		"ab12_1_42_7.m4s":  {kind: filePart, prefix: "ab12", track: 1, msn: 42, part: 7},
		"subs.m3u8":        {kind: fileSubsPlaylist},
		"ab12_subs_42.vtt": {kind: fileSubsSegment, prefix: "ab12", msn: 42},
	}
	for name, want := range cases {
		got, ok := parseFileName(name)
		if !ok || got != want {
			t.Errorf("parseFileName(%q) = %+v, %v; want %+v", name, got, ok, want)
		}
	}
	for _, bad := range []string{"", "t.m3u8", "t-1.m3u8", "t99.m3u8", "x_0_+1.m4s", "x_0_1_2_3.m4s", "_0_1.m4s", "x_0_init.mp4", "../x.m4s", "x_0_1 .m4s",
		"x_subs_.vtt", "_subs_1.vtt", "x_sub_1.vtt", "x_subs_1_2.vtt", "x_subs_-1.vtt", "x_subs_99999999999999999999.vtt"} {
		if got, ok := parseFileName(bad); ok {
			t.Errorf("parseFileName(%q) = %+v, want refusal", bad, got)
		}
	}
}

func FuzzParseFileName(f *testing.F) {
	for _, s := range []string{"index.m3u8", "t0.m3u8", "a_0_init1.mp4", "a_1_2.m4s", "a_1_2_3.m4s", "t18446744073709551616.m3u8", "subs.m3u8", "a_subs_3.vtt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		mf, ok := parseFileName(name)
		if !ok {
			return
		}
		if mf.track < 0 || mf.track >= maxTracks || mf.part < 0 || mf.period < 0 {
			t.Fatalf("%q parsed out of range: %+v", name, mf)
		}
	})
}
