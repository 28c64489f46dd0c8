package captions

import (
	"strings"
	"unicode"
)

// WordErrorRate is the word-level Levenshtein distance (substitutions,
// insertions and deletions) between hypothesis and reference divided by
// the reference's word count, after lowercasing and dropping
// punctuation. It is 0 when both are empty and 1 when only the
// reference is; it exceeds 1 when the hypothesis has many extra words.
func WordErrorRate(reference, hypothesis string) float64 {
	ref, hyp := werWords(reference), werWords(hypothesis)
	if len(ref) == 0 {
		if len(hyp) == 0 {
			return 0
		}
		return 1
	}
	// One row of the edit distance table at a time.
	prev := make([]int, len(hyp)+1)
	cur := make([]int, len(hyp)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		cur[0] = i
		for j := 1; j <= len(hyp); j++ {
			sub := prev[j-1]
			if ref[i-1] != hyp[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(hyp)]) / float64(len(ref))
}

// werWords lowercases s, drops its punctuation and splits it into words.
func werWords(s string) []string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPunct(r) || unicode.IsSymbol(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	return strings.Fields(s)
}
