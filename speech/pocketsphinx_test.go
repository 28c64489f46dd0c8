package speech

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
)

// spoken is a sentence of the test clip and when it starts.
type spoken struct {
	Text string
	At   time.Duration
}

// testSentences are simple sentences pocketsphinx recognises well in
// flite's slt voice, 6 s apart.
var testSentences = []spoken{
	{"The weather is nice today.", 1 * time.Second},
	{"Thank you very much for your help.", 7 * time.Second},
	{"The children are playing in the park.", 13 * time.Second},
}

const clipLength = 20 * time.Second

// makeSpeechClip writes an mp4 with a testsrc2 video and the sentences
// spoken by flite at their times, silence between.
func makeSpeechClip(t *testing.T, sentences []spoken, length time.Duration) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "speech.mp4")
	var graph strings.Builder
	var mix string
	for i, s := range sentences {
		fmt.Fprintf(&graph, "flite=text='%s':voice=slt,aresample=16000,adelay=delays=%d:all=1[s%d];",
			strings.ReplaceAll(s.Text, "'", ""), s.At.Milliseconds(), i)
		mix += fmt.Sprintf("[s%d]", i)
	}
	fmt.Fprintf(&graph, "%samix=inputs=%d:normalize=0:duration=longest,apad=whole_dur=%g,"+
		"aformat=channel_layouts=stereo:sample_rates=48000[a]", mix, len(sentences), length.Seconds())
	ffmpegOK(t, "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=s=320x240:r=15:d=%g", length.Seconds()),
		"-filter_complex", graph.String(), "-map", "0:v", "-map", "[a]",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-t", fmt.Sprint(length.Seconds()), out)
	return out
}

func ffmpegOK(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// words lowercases s and splits it into words without punctuation.
func words(s string) []string {
	return strings.Fields(strings.Map(func(r rune) rune {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'':
			return unicode.ToLower(r)
		case unicode.IsSpace(r):
			return ' '
		}
		return ' '
	}, s))
}

// wordErrorRate is the word-level Levenshtein distance between hypothesis
// and reference over the reference's word count.
func wordErrorRate(reference, hypothesis string) float64 {
	ref, hyp := words(reference), words(hypothesis)
	if len(ref) == 0 {
		if len(hyp) == 0 {
			return 0
		}
		return 1
	}
	prev := make([]int, len(hyp)+1)
	cur := make([]int, len(hyp)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		cur[0] = i
		for j := 1; j <= len(hyp); j++ {
			cost := 1
			if ref[i-1] == hyp[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(hyp)]) / float64(len(ref))
}

func TestWordErrorRate(t *testing.T) {
	for _, c := range []struct {
		ref, hyp string
		want     float64
	}{
		{"Hello, world!", "hello world", 0},
		{"the cat sat", "the cat sat on", 1.0 / 3},
		{"the cat sat", "the sat", 1.0 / 3},
		{"the cat sat", "a dog sat", 2.0 / 3},
		{"", "", 0},
	} {
		if got := wordErrorRate(c.ref, c.hyp); got != c.want {
			t.Errorf("wordErrorRate(%q, %q) = %v, want %v", c.ref, c.hyp, got, c.want)
		}
	}
}

func TestPocketsphinxTranscribes(t *testing.T) {
	clip := makeSpeechClip(t, testSentences, clipLength)
	eng := &Pocketsphinx{Logger: testLogger(t)}
	var progress []float64
	began := time.Now()
	tr, err := eng.Transcribe(context.Background(), clip, func(f float64) { progress = append(progress, f) })
	elapsed := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tr.Segments {
		t.Logf("%6.2fs - %6.2fs  %q", s.Start.Seconds(), s.End.Seconds(), s.Text)
	}
	if tr.Engine != "pocketsphinx" || tr.Language != "en" {
		t.Errorf("engine %q language %q, want pocketsphinx en", tr.Engine, tr.Language)
	}
	if d := tr.Duration - clipLength; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("duration %v, want %v", tr.Duration, clipLength)
	}

	// The recognised text, over all three sentences.
	var ref []string
	for _, s := range testSentences {
		ref = append(ref, s.Text)
	}
	wer := wordErrorRate(strings.Join(ref, " "), tr.Text())
	t.Logf("recognised %q: WER %.1f%%", tr.Text(), wer*100)
	if wer > 0.15 {
		t.Errorf("word error rate %.1f%% > 15%%", wer*100)
	}

	// Each sentence's first segment starts within 1 s of when it is spoken.
	for i, s := range testSentences {
		next := clipLength
		if i+1 < len(testSentences) {
			next = testSentences[i+1].At
		}
		var first *Segment
		for j := range tr.Segments {
			seg := &tr.Segments[j]
			mid := (seg.Start + seg.End) / 2
			if mid >= s.At && mid < next {
				first = seg
				break
			}
		}
		if first == nil {
			t.Errorf("no segment for %q spoken at %v", s.Text, s.At)
			continue
		}
		off := first.Start - s.At
		t.Logf("%q spoken at %v: segment starts at %v (%+.2fs), ends at %v", s.Text, s.At, first.Start, off.Seconds(), first.End)
		if off < -time.Second || off > time.Second {
			t.Errorf("%q spoken at %v: its segment starts at %v", s.Text, s.At, first.Start)
		}
		if first.End <= first.Start || first.End > next {
			t.Errorf("%q: segment %v-%v ends out of place", s.Text, first.Start, first.End)
		}
	}

	// Progress goes up to 1.
	if len(progress) < 2 || progress[len(progress)-1] != 1 {
		t.Errorf("progress %v, want several reports ending in 1", progress)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] < progress[i-1] {
			t.Errorf("progress goes back: %v", progress)
			break
		}
	}

	// Speed next to the bare asr filter on the same file (logged, not asserted).
	hmm, dict, lm, err := eng.model()
	if err != nil {
		t.Fatal(err)
	}
	bare := time.Now()
	ffmpegOK(t, "-i", clip, "-map", "0:a:0", "-af",
		fmt.Sprintf("asr=hmm=%s:dict=%s:lm=%s", escapeFilterValue(hmm), escapeFilterValue(dict), escapeFilterValue(lm)),
		"-f", "null", "-")
	bareElapsed := time.Since(bare)
	t.Logf("speed: engine %v (%.1fx realtime), bare ffmpeg asr %v (%.1fx realtime), engine/bare %.2f",
		elapsed.Round(time.Millisecond), clipLength.Seconds()/elapsed.Seconds(),
		bareElapsed.Round(time.Millisecond), clipLength.Seconds()/bareElapsed.Seconds(),
		elapsed.Seconds()/bareElapsed.Seconds())
}

func TestPocketsphinxNoAudio(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "silent.mp4")
	ffmpegOK(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1", "-c:v", "libx264", "-preset", "ultrafast", clip)
	_, err := (&Pocketsphinx{}).Transcribe(context.Background(), clip, nil)
	if !errors.Is(err, ErrNoAudio) {
		t.Fatalf("err = %v, want ErrNoAudio", err)
	}
	if !strings.Contains(err.Error(), "no audio stream") {
		t.Errorf("message %q does not say the file has no audio", err)
	}
	t.Log(err)

	// Without ffprobe, ffmpeg's own error tells it too.
	_, err = (&Pocketsphinx{FFprobe: filepath.Join(t.TempDir(), "no-ffprobe")}).Transcribe(context.Background(), clip, nil)
	if !errors.Is(err, ErrNoAudio) {
		t.Fatalf("without ffprobe: err = %v, want ErrNoAudio", err)
	}
}

func TestPocketsphinxBadInput(t *testing.T) {
	dir := t.TempDir()
	_, err := (&Pocketsphinx{}).Transcribe(context.Background(), filepath.Join(dir, "missing.mp4"), nil)
	if err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Errorf("missing file: err = %v, want ffprobe's No such file", err)
	}
	_, err = (&Pocketsphinx{ModelDir: dir}).Transcribe(context.Background(), filepath.Join(dir, "x.mp4"), nil)
	if err == nil || !strings.Contains(err.Error(), "model not found") {
		t.Errorf("no model: err = %v", err)
	}
}

func TestPocketsphinxCancel(t *testing.T) {
	clip := makeSpeechClip(t, testSentences[:1], clipLength)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := (&Pocketsphinx{}).Transcribe(ctx, clip, func(float64) { cancel() })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Transcribe did not stop on cancel")
	}
}

// A model folder whose path holds characters the filter graph syntax
// uses still works.
func TestPocketsphinxOddModelPath(t *testing.T) {
	clip := makeSpeechClip(t, []spoken{{"Good morning everyone.", 500 * time.Millisecond}}, 4*time.Second)
	dir := filepath.Join(t.TempDir(), "it's a [model], dir; with: colons\\")
	if err := os.Symlink(DefaultModelDir, dir); err != nil {
		t.Fatal(err)
	}
	tr, err := (&Pocketsphinx{ModelDir: dir}).Transcribe(context.Background(), clip, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wer := wordErrorRate("good morning everyone", tr.Text()); wer > 0.34 {
		t.Errorf("recognised %q", tr.Text())
	}
}

// Under steady noise there is no silence between the sentences: the
// frames' levels place them.
func TestPocketsphinxUnderNoise(t *testing.T) {
	clean := makeSpeechClip(t, testSentences, clipLength)
	noisy := filepath.Join(t.TempDir(), "noisy.mp4")
	ffmpegOK(t, "-i", clean, "-f", "lavfi", "-i", "anoisesrc=c=pink:a=0.08:r=48000:seed=7",
		"-filter_complex", "[0:a][1:a]amix=inputs=2:normalize=0:duration=first[a]",
		"-map", "0:v", "-map", "[a]", "-c:v", "copy", "-c:a", "aac", noisy)
	tr, err := (&Pocketsphinx{}).Transcribe(context.Background(), noisy, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tr.Segments {
		t.Logf("%6.2fs - %6.2fs  %q", s.Start.Seconds(), s.End.Seconds(), s.Text)
	}
	for _, s := range testSentences {
		found := false
		for _, seg := range tr.Segments {
			if len(words(seg.Text)) >= 3 && seg.Start >= s.At-time.Second && seg.Start <= s.At+time.Second {
				found = true
			}
		}
		if !found {
			t.Errorf("no segment starts within 1 s of %q spoken at %v", s.Text, s.At)
		}
	}
}
