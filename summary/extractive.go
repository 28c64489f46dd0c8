package summary

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mps-dev/mps/speech"
)

// Options shape an extractive summary. A zero field takes its default.
type Options struct {
	// MaxSentences is how many sentences the summary keeps; default 3.
	MaxSentences int
	// MaxKeywords is how many keywords to list; default 10.
	MaxKeywords int
	// MinChapter is the shortest chapter; default 60 s.
	MinChapter time.Duration
}

// Defaults of Options.
const (
	DefaultMaxSentences = 3
	DefaultMaxKeywords  = 10
	DefaultMinChapter   = 60 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxSentences <= 0 {
		o.MaxSentences = DefaultMaxSentences
	}
	if o.MaxKeywords <= 0 {
		o.MaxKeywords = DefaultMaxKeywords
	}
	if o.MinChapter <= 0 {
		o.MinChapter = DefaultMinChapter
	}
	return o
}

const (
	// longPause is a silence between two sentences that starts a chapter
	// (where MinChapter allows).
	longPause = 5 * time.Second
	// mergePause is the longest pause across which a sentence cut by a
	// segment end is continued in the next segment.
	mergePause = 2 * time.Second
	// maxSentenceWords caps a sentence made of several segments.
	maxSentenceWords = 60
	// titleWords is how many keywords a chapter title has.
	titleWords = 3
	// maxCross is the most similar, relative to the median, that the
	// words before and after a topic shift may be.
	maxCross = 0.5
)

// sentence is a transcript sentence with its content words (folded).
type sentence struct {
	Sentence
	keys []string
}

// Extractive summarises without a model: sentences (the transcript's
// segments split at . ! and ?, times shared out by words or characters)
// are scored by the frequency of their content words (English stop words
// dropped), and the top MaxSentences, kept different from each other and
// shared out between the chapters by their length, form the summary in
// time order. Keywords are the most frequent content
// words (plurals folded). Chapters start at 0 and where the topic shifts
// (windows of sentences before and after compared by word overlap) or at
// a long pause, at least MinChapter apart, and are titled by their top
// keywords.
func Extractive(t *speech.Transcript, o Options) Result {
	o = o.withDefaults()
	res := Result{Method: MethodExtractive, Keywords: []string{}, Chapters: []Chapter{}}
	if t == nil {
		return res
	}
	sents := splitTranscript(t)
	if len(sents) == 0 {
		return res
	}
	voc := newVocabulary(sents)
	res.Keywords = voc.top(voc.tf, o.MaxKeywords)

	end := sents[len(sents)-1].End
	if t.Duration > end {
		end = t.Duration
	}
	starts := chapterStarts(sents, o.MinChapter, end)
	for _, s := range summarySentences(sents, starts, o.MaxSentences) {
		res.Sentences = append(res.Sentences, s.Sentence)
	}
	texts := make([]string, len(res.Sentences))
	for i, s := range res.Sentences {
		texts[i] = asSentence(s.Text)
	}
	res.Summary = strings.Join(texts, " ")
	res.Chapters = titleChapters(sents, starts, voc)
	return res
}

// asSentence capitalises s and ends it with a full stop when it has no
// end punctuation (as pocketsphinx's text has none).
func asSentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.ContainsRune(".!?", []rune(s)[utf8.RuneCountInString(s)-1]) {
		s += "."
	}
	return s
}

// piece is a part of a segment's text: one sentence or its start.
type piece struct {
	text     string
	from, to int  // byte offsets in the segment's text
	closed   bool // ends with . ! or ?
}

// splitText splits text after . ! and ? followed by a space or the end.
func splitText(text string) []piece {
	var out []piece
	start := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '.' && c != '!' && c != '?' {
			continue
		}
		// Take the run of end marks and closing quotes.
		j := i + 1
		for j < len(text) && strings.IndexByte(".!?\"')]", text[j]) >= 0 {
			j++
		}
		if j < len(text) && text[j] != ' ' && text[j] != '\t' && text[j] != '\n' {
			i = j - 1
			continue
		}
		if s := strings.TrimSpace(text[start:j]); s != "" {
			out = append(out, piece{text: s, from: start, to: j, closed: true})
		}
		start = j
		i = j - 1
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, piece{text: s, from: start, to: len(text)})
	}
	return out
}

// pieceTimes gives each piece of a segment its times: from the segment's
// word times when its words match its text, else in proportion to the
// characters.
func pieceTimes(seg speech.Segment, pieces []piece) [][2]time.Duration {
	times := make([][2]time.Duration, len(pieces))
	span := max(seg.End-seg.Start, 0)
	total := len(seg.Text)
	var words []speech.Word
	for _, w := range seg.Words {
		if strings.TrimSpace(w.Text) != "" {
			words = append(words, w)
		}
	}
	fields := 0
	for _, p := range pieces {
		fields += len(strings.Fields(p.text))
	}
	useWords := len(words) > 0 && len(words) == fields
	k := 0
	for i, p := range pieces {
		if useWords {
			n := len(strings.Fields(p.text))
			times[i] = [2]time.Duration{words[k].Start, max(words[k+n-1].End, words[k].Start)}
			k += n
			continue
		}
		at := func(off int) time.Duration {
			if total == 0 {
				return seg.Start
			}
			return seg.Start + time.Duration(float64(span)*float64(off)/float64(total))
		}
		times[i] = [2]time.Duration{at(p.from), at(p.to)}
	}
	return times
}

// splitTranscript returns the transcript's sentences in time order. When
// the transcript has punctuation, a sentence a segment leaves open goes
// on in the next segment (unless a pause separates them).
func splitTranscript(t *speech.Transcript) []sentence {
	segs := slices.Clone(t.Segments)
	slices.SortStableFunc(segs, func(a, b speech.Segment) int { return cmpDur(a.Start, b.Start) })
	punct := false
	for _, s := range segs {
		if strings.ContainsAny(s.Text, ".!?") {
			punct = true
			break
		}
	}
	var out []sentence
	var open *sentence
	flush := func() {
		if open != nil {
			open.keys = contentKeys(open.Text)
			out = append(out, *open)
			open = nil
		}
	}
	for _, seg := range segs {
		pieces := splitText(seg.Text)
		times := pieceTimes(seg, pieces)
		for i, p := range pieces {
			start, end := times[i][0], times[i][1]
			if open != nil && i == 0 && punct && start-open.End <= mergePause &&
				len(strings.Fields(open.Text))+len(strings.Fields(p.text)) <= maxSentenceWords {
				open.Text += " " + p.text
				open.End = max(open.End, end)
			} else {
				flush()
				open = &sentence{Sentence: Sentence{Start: start, End: max(end, start), Text: p.text}}
			}
			if p.closed || !punct {
				flush()
			}
		}
	}
	flush()
	return out
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// vocabulary counts the content words of a transcript.
type vocabulary struct {
	tf    map[string]int
	first map[string]int            // index of the first occurrence
	forms map[string]map[string]int // key -> surface form -> count
}

func newVocabulary(sents []sentence) *vocabulary {
	v := &vocabulary{tf: map[string]int{}, first: map[string]int{}, forms: map[string]map[string]int{}}
	n := 0
	for _, s := range sents {
		for _, w := range words(s.Text) {
			if !isContent(w) {
				continue
			}
			k := fold(w)
			v.tf[k]++
			if _, ok := v.first[k]; !ok {
				v.first[k] = n
				v.forms[k] = map[string]int{}
			}
			v.forms[k][w]++
			n++
		}
	}
	return v
}

// form is the most used spelling of a key (the shortest on a tie).
func (v *vocabulary) form(k string) string {
	best, bn := k, -1
	for f, n := range v.forms[k] {
		if n > bn || n == bn && (len(f) < len(best) || len(f) == len(best) && f < best) {
			best, bn = f, n
		}
	}
	return best
}

// top returns the forms of the n keys scoring highest (ties: the first
// said).
func (v *vocabulary) top(score map[string]int, n int) []string {
	return v.topBy(func(k string) float64 { return float64(score[k]) }, keysOf(score), n)
}

func (v *vocabulary) topBy(score func(string) float64, keys []string, n int) []string {
	slices.SortFunc(keys, func(a, b string) int {
		sa, sb := score(a), score(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return v.first[a] - v.first[b]
	})
	out := []string{}
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, v.form(k))
	}
	return out
}

func keysOf(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// summarySentences picks n sentences, shared out between the chapters
// by their number of words so that every part is told, and returns them
// in time order.
func summarySentences(sents []sentence, starts []int, n int) []sentence {
	bounds := append(slices.Clone(starts), len(sents))
	weights := make([]float64, len(starts))
	total := 0.0
	for c := range starts {
		for _, s := range sents[bounds[c]:bounds[c+1]] {
			weights[c] += float64(len(s.keys))
		}
		total += weights[c]
	}
	if total == 0 {
		return nil
	}
	// Largest remainder shares.
	quota := make([]int, len(starts))
	left := n
	type rem struct {
		c int
		r float64
	}
	var rems []rem
	for c, w := range weights {
		exact := float64(n) * w / total
		quota[c] = int(exact)
		left -= quota[c]
		rems = append(rems, rem{c, exact - float64(quota[c])})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.r > b.r:
			return -1
		case a.r < b.r:
			return 1
		}
		return a.c - b.c
	})
	for _, r := range rems[:min(left, len(rems))] {
		quota[r.c]++
	}
	var picked []int
	used := make([]bool, len(sents))
	for c := range starts {
		part := sents[bounds[c]:bounds[c+1]]
		for _, i := range pickSentences(part, nil, quota[c], newVocabulary(part)) {
			picked = append(picked, bounds[c]+i)
			used[bounds[c]+i] = true
		}
	}
	// Chapters too short for their share leave some for the others.
	if len(picked) < n {
		picked = append(picked, pickSentences(sents, used, n-len(picked), newVocabulary(sents))...)
	}
	slices.Sort(picked)
	out := make([]sentence, len(picked))
	for i, j := range picked {
		out[i] = sents[j]
	}
	return out
}

// pickSentences chooses up to n sentences not used yet by the frequency
// of their content words, penalising overlap with those already chosen,
// and returns their indexes.
func pickSentences(sents []sentence, used []bool, n int, v *vocabulary) []int {
	maxTF := 1
	for _, c := range v.tf {
		maxTF = max(maxTF, c)
	}
	scores := make([]float64, len(sents))
	for i, s := range sents {
		distinct := uniq(s.keys)
		if len(distinct) == 0 {
			continue
		}
		sum := 0.0
		for _, k := range distinct {
			sum += float64(v.tf[k]) / float64(maxTF)
		}
		scores[i] = sum / math.Sqrt(float64(len(distinct)))
	}
	taken := make([]bool, len(sents))
	if used != nil {
		copy(taken, used)
	}
	var picked []int
	for len(picked) < n {
		best, bestScore := -1, -1.0
		for i, s := range sents {
			if taken[i] {
				continue
			}
			red := 0.0
			for _, j := range picked {
				red = max(red, overlap(s.keys, sents[j].keys))
			}
			sc := scores[i] * (1 - 0.7*red)
			if sc > bestScore {
				best, bestScore = i, sc
			}
		}
		if best < 0 {
			break
		}
		taken[best] = true
		picked = append(picked, best)
	}
	return picked
}

func uniq(keys []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// overlap is the Jaccard overlap of two word sets.
func overlap(a, b []string) float64 {
	sa := map[string]bool{}
	for _, k := range a {
		sa[k] = true
	}
	sb := map[string]bool{}
	inter := 0
	for _, k := range b {
		if !sb[k] {
			sb[k] = true
			if sa[k] {
				inter++
			}
		}
	}
	union := len(sa) + len(sb) - inter
	if union == 0 {
		return 0
	}
	return float64(inter) / float64(union)
}

// cosine compares two bags of words.
func cosine(a, b map[string]int) float64 {
	var dot, na, nb float64
	for k, x := range a {
		na += float64(x * x)
		dot += float64(x * b[k])
	}
	for _, y := range b {
		nb += float64(y * y)
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// bag counts the content words of sents.
func bag(sents []sentence) map[string]int {
	m := map[string]int{}
	for _, s := range sents {
		for _, k := range s.keys {
			m[k]++
		}
	}
	return m
}

// chapterStarts returns the indexes of the sentences that start a
// chapter (0 first): at long pauses and where the words of the sentences
// before and after differ most, at least minChapter apart and half of it
// before end.
func chapterStarts(sents []sentence, minChapter, end time.Duration) []int {
	n := len(sents)
	starts := []int{0}
	if n < 2 {
		return starts
	}
	window := min(max(2*minChapter, time.Minute), 5*time.Minute)
	type cand struct {
		i     int
		score float64
	}
	// cross[i] is the similarity of the sentences in the window before
	// sentence i with those in the window after it.
	cross := make([]float64, n)
	for i := 1; i < n; i++ {
		at := sents[i].Start
		lo := i - 1
		for lo > 0 && (sents[lo-1].Start >= at-window || i-lo < 2) {
			lo--
		}
		hi := i + 1
		for hi < n && (sents[hi].Start < at+window || hi-i < 2) {
			hi++
		}
		cross[i] = cosine(bag(sents[lo:i]), bag(sents[i:hi]))
	}
	med := median(cross[1:])
	var cands []cand
	for i := 1; i < n; i++ {
		at := sents[i].Start
		if at < minChapter || end-at < minChapter {
			continue
		}
		if pause := at - sents[i-1].End; pause >= longPause {
			cands = append(cands, cand{i, 2 + pause.Seconds()/1e4})
			continue
		}
		c := cross[i]
		localMin := (i == 1 || c <= cross[i-1]) && (i == n-1 || c <= cross[i+1])
		if localMin && c < maxCross*med && c < 0.35 {
			cands = append(cands, cand{i, 1 - c})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return a.i - b.i
	})
	for _, c := range cands {
		at := sents[c.i].Start
		ok := true
		for _, s := range starts {
			d := at - sents[s].Start
			if s == 0 {
				d = at
			}
			if d < 0 {
				d = -d
			}
			if d < minChapter {
				ok = false
				break
			}
		}
		if ok {
			starts = append(starts, c.i)
		}
	}
	slices.Sort(starts)
	return starts
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// titleChapters makes the chapters starting at the given sentences,
// titled by the words most frequent in each and rare in the others.
func titleChapters(sents []sentence, starts []int, v *vocabulary) []Chapter {
	bags := make([]map[string]int, len(starts))
	df := map[string]int{}
	for c, s := range starts {
		e := len(sents)
		if c+1 < len(starts) {
			e = starts[c+1]
		}
		bags[c] = bag(sents[s:e])
		for k := range bags[c] {
			df[k]++
		}
	}
	chapters := make([]Chapter, len(starts))
	for c, s := range starts {
		b := bags[c]
		idf := func(k string) float64 { return math.Log(1 + float64(len(starts))/float64(df[k])) }
		words := v.topBy(func(k string) float64 { return float64(b[k]) * idf(k) }, keysOf(b), titleWords)
		title := strings.Join(words, ", ")
		if title == "" {
			title = "Chapter " + strconv.Itoa(c+1)
		} else {
			r, n := utf8.DecodeRuneInString(title)
			title = string(unicode.ToUpper(r)) + title[n:]
		}
		start := sents[s].Start
		if c == 0 {
			start = 0
		}
		chapters[c] = Chapter{Start: start, Title: title}
	}
	return chapters
}

// words splits text into lowercase words (letters, digits and inner
// apostrophes), with possessive 's dropped.
func words(text string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' && r != '’'
	}) {
		f = strings.ReplaceAll(f, "’", "'")
		f = strings.Trim(f, "'")
		f = strings.TrimSuffix(f, "'s")
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// contentKeys returns the folded content words of text.
func contentKeys(text string) []string {
	var out []string
	for _, w := range words(text) {
		if isContent(w) {
			out = append(out, fold(w))
		}
	}
	return out
}

// isContent reports whether w is a content word: not a stop word, not a
// number, at least 3 characters.
func isContent(w string) bool {
	if utf8.RuneCountInString(w) < 3 || stopWords[w] || strings.ContainsRune(w, '\'') {
		return false
	}
	for _, r := range w {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// fold folds simple English plurals: berries -> berry, boxes -> box,
// goals -> goal (not glass, bus, analysis).
func fold(w string) string {
	n := len(w)
	switch {
	case n <= 3:
		return w
	case strings.HasSuffix(w, "ies") && n > 4:
		return w[:n-3] + "y"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"),
		strings.HasSuffix(w, "xes"), strings.HasSuffix(w, "zzes"):
		return w[:n-2]
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
		return w
	case strings.HasSuffix(w, "s"):
		return w[:n-1]
	}
	return w
}

// stopWords are English words that carry no topic, with the fillers of
// speech.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
a about above across after afterwards again against all almost alone along already also although always am among
amongst an and another any anybody anyhow anyone anything anyway anywhere are around as at back be became because
become becomes becoming been before beforehand behind being below beside besides between beyond both but by can
cannot could did do does doing done down during each either else elsewhere enough etc even ever every everybody
everyone everything everywhere except few first for former formerly from further get gets getting give given gives
go goes going gone got gotten had has have having he hence her here hereafter hereby herein hers herself him himself
his how however i if in indeed instead into is it its itself just keep kept know knew known last later latter least
less let lets like likely made make makes making many may maybe me meanwhile might mine more moreover most mostly
much must my myself namely neither never nevertheless new next no nobody none noone nor not nothing now nowhere of
off often oh ok okay on once one ones only onto or other others otherwise our ours ourselves out over own per perhaps
please put quite rather re really right said same say saying says see seem seemed seeming seems seen several shall
she should show since so some somebody somehow someone something sometime sometimes somewhere still such sure take
taken takes taking tell than that the their theirs them themselves then thence there thereafter thereby therefore
therein thereupon these they thing things think this those though through throughout thru thus to today together too
took toward towards under unless until up upon us use used uses using very via want wants was way we well were what
whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever whether which while whither
who whoever whole whom whose why will with within without would yet you your yours yourself yourselves yeah yes um
uh uhm hmm mm ah er erm hey hi hello lot lots kind sort actually basically literally totally stuff guys gonna wanna
gotta kinda sorta lot really very thank thanks let's look looks looking looked come comes coming came mean means meant
two three four five six seven eight nine ten hundred thousand time times year years day days good great little big
able across already around bit each end ever fact far fine given goes however instead like long lot many might
much need needs needed new nice now often part pretty probably quite rather real said say seem sure thing try tried
trying went work works yeah else every going
`) {
		m[w] = true
	}
	return m
}()
