package srt

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ffmpeg reads a stream back over SRT and decodes its frames, with both
// stream id syntaxes.
func TestReadBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	push(t, e.url("publish:live/back:"+testKey, testPassphrase), 12*time.Second, h264AAC)
	st := e.waitLive("live/back", 5*time.Second)

	for _, sid := range []string{"read:live/back", "#!::r=live/back,m=request"} {
		out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "5000000",
			"-i", e.url(sid, testPassphrase),
			"-read_intervals", "%+2", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames",
			"-of", "csv=p=0").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ffprobe: %v\n%s", sid, err, out)
		}
		frames := map[string]int{}
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			codec, n, _ := strings.Cut(line, ",")
			frames[codec], _ = strconv.Atoi(strings.TrimSpace(n))
		}
		if frames["h264"] < 20 || frames["aac"] < 20 {
			t.Fatalf("%s: decoded %v\n%s", sid, frames, out)
		}
	}
	if st.Info().BytesOut == 0 {
		t.Fatal("no bytes out counted")
	}
	e.waitLog(time.Second, "srt reader detached")
}
