package summary

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/speech"
)

var pastaSentences = []string{
	"Today we are cooking pasta at home in a simple kitchen.",
	"First bring a large pot of water to the boil and add plenty of salt.",
	"Put the dry pasta into the boiling water and stir the pasta well.",
	"While the pasta cooks, warm olive oil and garlic in a pan.",
	"Add chopped tomatoes to the garlic and let the sauce simmer.",
	"Taste the pasta after eight minutes, it should be firm to the bite.",
	"Save a cup of the starchy pasta water before you drain it.",
	"Drain the pasta and toss it in the tomato sauce with the water.",
	"Grate fresh parmesan cheese over the pasta and add basil leaves.",
	"Serve the pasta hot in warm bowls with more cheese and sauce.",
}

var footballSentences = []string{
	"Now let us talk about the football match last night.",
	"The home team scored an early goal from a corner kick.",
	"Their striker ran past two defenders and shot at the goal.",
	"The goalkeeper saved a penalty just before half time in the match.",
	"After the break the visiting team pressed high up the football pitch.",
	"A header from the captain levelled the score at one goal each.",
	"The referee showed a red card to a defender for a late tackle.",
	"With ten players the home team defended deep until the final whistle.",
	"The coach praised the players and the fans for the football spirit.",
	"The next match of the league is on Saturday against the champions.",
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// twoTopics is a transcript of 10 pasta sentences then 10 football
// sentences, 8 s each, two sentences per segment.
func twoTopics() *speech.Transcript {
	all := append(slices.Clone(pastaSentences), footballSentences...)
	tr := &speech.Transcript{Engine: "test", Language: "en", Duration: sec(165)}
	for i := 0; i < len(all); i += 2 {
		tr.Segments = append(tr.Segments, speech.Segment{
			Start: sec(float64(i) * 8),
			End:   sec(float64(i)*8 + 15.5),
			Text:  all[i] + " " + all[i+1],
		})
	}
	return tr
}

func TestExtractiveTwoTopics(t *testing.T) {
	tr := twoTopics()
	res := Extractive(tr, Options{MinChapter: 30 * time.Second})
	if res.Method != MethodExtractive {
		t.Errorf("method %q", res.Method)
	}
	// A chapter at 0 and one near the switch to football at 80 s.
	if len(res.Chapters) != 2 {
		t.Fatalf("chapters %+v: want 2", res.Chapters)
	}
	if res.Chapters[0].Start != 0 {
		t.Errorf("first chapter at %v, want 0", res.Chapters[0].Start)
	}
	if d := res.Chapters[1].Start - sec(80); d < -sec(16) || d > sec(16) {
		t.Errorf("second chapter at %v, want near 80s", res.Chapters[1].Start)
	}
	if !strings.Contains(strings.ToLower(res.Chapters[0].Title), "pasta") {
		t.Errorf("first chapter title %q: want pasta in it", res.Chapters[0].Title)
	}
	if !strings.Contains(strings.ToLower(res.Chapters[1].Title), "football") &&
		!strings.Contains(strings.ToLower(res.Chapters[1].Title), "goal") &&
		!strings.Contains(strings.ToLower(res.Chapters[1].Title), "match") {
		t.Errorf("second chapter title %q: want football, goal or match in it", res.Chapters[1].Title)
	}
	// Keywords name both topics.
	kw := strings.Join(res.Keywords, " ")
	for _, w := range []string{"pasta", "water", "sauce", "goal", "football", "match"} {
		if !slices.Contains(res.Keywords, w) {
			t.Errorf("keywords %q: no %q", kw, w)
		}
	}
	if len(res.Keywords) != DefaultMaxKeywords {
		t.Errorf("%d keywords, want %d", len(res.Keywords), DefaultMaxKeywords)
	}
	for _, w := range res.Keywords {
		if stopWords[w] {
			t.Errorf("stop word %q in keywords", w)
		}
	}
	// Summary sentences come from the transcript, in time order.
	if len(res.Sentences) != DefaultMaxSentences {
		t.Fatalf("%d sentences, want %d", len(res.Sentences), DefaultMaxSentences)
	}
	all := append(slices.Clone(pastaSentences), footballSentences...)
	topics := map[bool]bool{}
	for i, s := range res.Sentences {
		idx := slices.Index(all, s.Text)
		if idx < 0 {
			t.Errorf("sentence %q is not in the transcript", s.Text)
			continue
		}
		topics[idx >= 10] = true
		// Its times are within its segment.
		seg := tr.Segments[idx/2]
		if s.Start < seg.Start || s.End > seg.End || s.End <= s.Start {
			t.Errorf("sentence %q at %v..%v, outside its segment %v..%v", s.Text, s.Start, s.End, seg.Start, seg.End)
		}
		if i > 0 && s.Start <= res.Sentences[i-1].Start {
			t.Errorf("sentences not in time order: %+v", res.Sentences)
		}
		if !strings.Contains(res.Summary, s.Text) {
			t.Errorf("summary %q lacks %q", res.Summary, s.Text)
		}
	}
	if !topics[false] || !topics[true] {
		t.Errorf("summary %q: want sentences of both topics", res.Summary)
	}
}

func TestExtractiveDefaultMinChapter(t *testing.T) {
	// With 60 s chapters, still one boundary (80 s is 60 s from 0 and
	// more than 60 s from the end).
	res := Extractive(twoTopics(), Options{})
	if len(res.Chapters) != 2 {
		t.Fatalf("chapters %+v", res.Chapters)
	}
	// With 100 s chapters, none fits.
	res = Extractive(twoTopics(), Options{MinChapter: 100 * time.Second})
	if len(res.Chapters) != 1 || res.Chapters[0].Start != 0 {
		t.Fatalf("chapters %+v, want one at 0", res.Chapters)
	}
}

func TestExtractiveOneTopicNoChapters(t *testing.T) {
	tr := &speech.Transcript{}
	for i, s := range pastaSentences {
		tr.Segments = append(tr.Segments, speech.Segment{Start: sec(float64(i) * 10), End: sec(float64(i)*10 + 9), Text: s})
	}
	res := Extractive(tr, Options{MinChapter: 40 * time.Second})
	if len(res.Chapters) != 1 {
		t.Errorf("one topic gave chapters %+v", res.Chapters)
	}
}

func TestExtractiveLongPause(t *testing.T) {
	// No punctuation (as pocketsphinx), one topic, a 20 s pause.
	tr := &speech.Transcript{Segments: []speech.Segment{
		{Start: sec(0), End: sec(30), Text: "we talk about the garden and the flowers in the garden"},
		{Start: sec(31), End: sec(60), Text: "the garden flowers need water in the summer"},
		{Start: sec(80), End: sec(100), Text: "garden flowers and more garden flowers"},
		{Start: sec(101), End: sec(130), Text: "the flowers of the garden close the show"},
	}}
	res := Extractive(tr, Options{MinChapter: 30 * time.Second})
	if len(res.Chapters) != 2 || res.Chapters[1].Start != sec(80) {
		t.Fatalf("chapters %+v: want one at the pause (80s)", res.Chapters)
	}
	// Each segment is a sentence; the summary ends them with a full stop.
	if len(res.Sentences) != 3 || !strings.HasSuffix(res.Summary, ".") || !strings.HasPrefix(res.Summary, strings.ToUpper(res.Summary[:1])) {
		t.Errorf("summary %q sentences %+v", res.Summary, res.Sentences)
	}
	if res.Keywords[0] != "garden" && res.Keywords[0] != "flowers" {
		t.Errorf("keywords %q", res.Keywords)
	}
}

func TestExtractiveEmpty(t *testing.T) {
	for _, tr := range []*speech.Transcript{nil, {}, {Segments: []speech.Segment{{Text: "  "}}}} {
		res := Extractive(tr, Options{})
		if res.Summary != "" || len(res.Keywords) != 0 || len(res.Chapters) != 0 || res.Keywords == nil || res.Chapters == nil {
			t.Errorf("empty transcript: %+v", res)
		}
		b, _ := json.Marshal(res)
		if !strings.Contains(string(b), `"keywords":[]`) || !strings.Contains(string(b), `"chapters":[]`) {
			t.Errorf("JSON %s: want empty lists", b)
		}
	}
}

func TestSplitSentences(t *testing.T) {
	// Sentences across segments are joined; word times give sentence times.
	tr := &speech.Transcript{Segments: []speech.Segment{
		{Start: sec(0), End: sec(4), Text: "Hello there. This sentence", Words: []speech.Word{
			{Start: sec(0), End: sec(0.5), Text: "Hello"}, {Start: sec(0.6), End: sec(1), Text: "there."},
			{Start: sec(2), End: sec(2.5), Text: "This"}, {Start: sec(2.6), End: sec(3.9), Text: "sentence"},
		}},
		{Start: sec(4.5), End: sec(6), Text: "goes on! Version 3.5 is out? Yes"},
	}}
	got := splitTranscript(tr)
	want := []Sentence{
		{Start: sec(0), End: sec(1), Text: "Hello there."},
		{Start: sec(2), End: tr.Segments[1].Start + (sec(1.5)*8)/32, Text: "This sentence goes on!"},
		{Start: tr.Segments[1].Start + (sec(1.5)*8)/32, End: tr.Segments[1].Start + (sec(1.5)*28)/32, Text: "Version 3.5 is out?"},
		{Start: tr.Segments[1].Start + (sec(1.5)*28)/32, End: sec(6), Text: "Yes"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		g := got[i].Sentence
		if g.Text != want[i].Text || absDur(g.Start-want[i].Start) > time.Millisecond || absDur(g.End-want[i].End) > time.Millisecond {
			t.Errorf("sentence %d = %+v, want %+v", i, g, want[i])
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"goals": "goal", "berries": "berry", "boxes": "box", "matches": "match", "glass": "glass",
		"bus": "bus", "analysis": "analysis", "sauces": "sauce", "gas": "gas", "classes": "class",
	} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSONSeconds(t *testing.T) {
	r := Result{Method: "extractive", Summary: "s", Keywords: []string{"k"},
		Chapters:  []Chapter{{Start: sec(0)}, {Start: sec(90.5), Title: "Two"}},
		Sentences: []Sentence{{Start: sec(1.25), End: sec(3), Text: "x"}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"method":"extractive","summary":"s","sentences":[{"start":1.25,"end":3,"text":"x"}],"keywords":["k"],"chapters":[{"start":0,"title":""},{"start":90.5,"title":"Two"}]}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Chapters[1] != r.Chapters[1] || back.Sentences[0] != r.Sentences[0] {
		t.Errorf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"start":-1,"title":"x"}`), &Chapter{}); err == nil {
		t.Error("negative start accepted")
	}
}
