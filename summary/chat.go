package summary

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mps-dev/mps/speech"
)

const (
	// DefaultChatTimeout bounds a Summarize request when Chat.Timeout is 0.
	DefaultChatTimeout = 2 * time.Minute
	// maxPromptChars caps the transcript sent to the model.
	maxPromptChars = 100_000
	// maxAnswerBytes caps the answer read from the endpoint.
	maxAnswerBytes = 8 << 20
)

const systemPrompt = `You summarise the transcripts of videos. Answer with one JSON object and nothing else:
{"summary": "...", "keywords": ["...", ...], "chapters": [{"start": 0, "title": "..."}, ...]}
- summary: two to four sentences in the language of the transcript.
- keywords: up to 10 words or short phrases naming the topics, most important first.
- chapters: where the topic changes; the first starts at 0; start is in seconds from the start of the video, title is a few words.`

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// Summarize asks the model for a summary, keywords and chapters of a
// transcript, sent with a [mm:ss] time on each segment's line, and asks
// for a JSON answer (which it also takes inside ``` fences). An answer
// that is no JSON becomes the summary text, with keywords and chapters
// from Extractive, as are they when the JSON lacks them. A non-2xx status
// is an error wrapping a *speech.HTTPError; an endpoint that cannot be
// reached or does not answer within Timeout (or ctx) is an error too. An
// empty transcript needs no model: its summary is empty.
func (c *Chat) Summarize(ctx context.Context, t *speech.Transcript) (Result, error) {
	res := Result{Method: MethodLLM, Keywords: []string{}, Chapters: []Chapter{}}
	if c == nil || strings.TrimSpace(c.URL) == "" {
		return res, errors.New("summary: no chat endpoint URL configured")
	}
	res.Model = c.Model
	prompt, ok := transcriptPrompt(t)
	if !ok {
		return res, nil
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultChatTimeout
	}
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	body, err := json.Marshal(chatRequest{Model: c.Model, Messages: []chatMessage{
		{Role: "system", Content: systemPrompt},
		{Role: "user", Content: prompt},
	}})
	if err != nil {
		return res, fmt.Errorf("summary: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return res, fmt.Errorf("summary: chat endpoint %q: %w", c.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return res, chatError(ctx, c.URL, timeout, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return res, chatError(ctx, c.URL, timeout, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, fmt.Errorf("summary: chat: %w", &speech.HTTPError{URL: c.URL, Status: resp.StatusCode, Body: string(raw)})
	}
	var cr chatResponse
	if err := json.Unmarshal(raw, &cr); err != nil {
		return res, fmt.Errorf("summary: chat endpoint %s: the answer is no chat completion: %v", c.URL, err)
	}
	if len(cr.Choices) == 0 {
		return res, fmt.Errorf("summary: chat endpoint %s: the answer has no choices", c.URL)
	}
	content := strings.TrimSpace(cr.Choices[0].Message.Content)
	if content == "" {
		return res, fmt.Errorf("summary: chat endpoint %s: the model answered an empty message", c.URL)
	}
	if cr.Model != "" {
		res.Model = cr.Model
	}
	var ex *Result
	extractive := func() *Result {
		if ex == nil {
			r := Extractive(t, Options{})
			ex = &r
		}
		return ex
	}
	a, ok := parseAnswer(content)
	if !ok {
		res.Summary = content
		res.Keywords = extractive().Keywords
		res.Chapters = extractive().Chapters
		return res, nil
	}
	res.Summary = a.summary
	res.Keywords, res.Chapters = a.keywords, a.chapters
	if len(res.Keywords) == 0 {
		res.Keywords = extractive().Keywords
	}
	if len(res.Chapters) == 0 {
		res.Chapters = extractive().Chapters
	}
	return res, nil
}

// chatError explains a failed request.
func chatError(ctx context.Context, url string, timeout time.Duration, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("summary: chat endpoint %s did not answer in time (timeout %v): %w", url, timeout, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("summary: chat endpoint %s: canceled: %w", url, err)
	}
	return fmt.Errorf("summary: chat endpoint %s unreachable: %w", url, err)
}

// transcriptPrompt writes the transcript for the model, one segment a
// line with its [mm:ss] time; ok is false when it has no text.
func transcriptPrompt(t *speech.Transcript) (string, bool) {
	if t == nil {
		return "", false
	}
	var b strings.Builder
	b.WriteString("Transcript")
	if t.Duration > 0 {
		fmt.Fprintf(&b, " of a video of %s", clock(t.Duration))
	}
	b.WriteString("; each line starts with its time from the start of the video, [mm:ss] or [h:mm:ss]:\n\n")
	head := b.Len()
	segs := slices.Clone(t.Segments)
	slices.SortStableFunc(segs, func(a, b speech.Segment) int { return cmpDur(a.Start, b.Start) })
	for _, s := range segs {
		text := strings.Join(strings.Fields(s.Text), " ")
		if text == "" {
			continue
		}
		line := fmt.Sprintf("[%s] %s\n", clock(s.Start), text)
		if b.Len()+len(line) > maxPromptChars {
			b.WriteString("[the rest of the transcript is left out]\n")
			break
		}
		b.WriteString(line)
	}
	if b.Len() == head {
		return "", false
	}
	return b.String(), true
}

// clock writes d as m:ss, or h:mm:ss from an hour on.
func clock(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// answer is a model's JSON answer.
type answer struct {
	summary  string
	keywords []string
	chapters []Chapter
}

var fenceRE = regexp.MustCompile("(?s)```[a-zA-Z]*[ \t]*\n?(.*?)```")

// parseAnswer reads the JSON object of a model's answer: the whole
// content, inside ``` fences, or from its first '{' to its last '}'. ok
// is false when none of these is a JSON object with a summary.
func parseAnswer(content string) (answer, bool) {
	content = strings.TrimSpace(content)
	cands := []string{content}
	for _, m := range fenceRE.FindAllStringSubmatch(content, 4) {
		cands = append(cands, m[1])
	}
	if i, j := strings.IndexByte(content, '{'), strings.LastIndexByte(content, '}'); i >= 0 && j > i {
		cands = append(cands, content[i:j+1])
	}
	for _, c := range cands {
		if a, ok := decodeAnswer(strings.TrimSpace(c)); ok {
			return a, true
		}
	}
	return answer{}, false
}

func decodeAnswer(s string) (answer, bool) {
	if !strings.HasPrefix(s, "{") {
		return answer{}, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &obj); err != nil {
		return answer{}, false
	}
	get := func(keys ...string) json.RawMessage {
		for k, v := range obj {
			for _, want := range keys {
				if strings.EqualFold(k, want) {
					return v
				}
			}
		}
		return nil
	}
	var a answer
	a.summary = strings.TrimSpace(textOf(get("summary")))
	if a.summary == "" {
		return answer{}, false
	}
	a.keywords = []string{}
	if raw := get("keywords", "tags", "topics"); raw != nil {
		var list []string
		if json.Unmarshal(raw, &list) != nil {
			if one := textOf(raw); one != "" {
				list = strings.Split(one, ",")
			}
		}
		seen := map[string]bool{}
		for _, k := range list {
			k = strings.TrimSpace(k)
			if k != "" && !seen[strings.ToLower(k)] {
				seen[strings.ToLower(k)] = true
				a.keywords = append(a.keywords, k)
			}
		}
	}
	a.chapters = []Chapter{}
	var chs []map[string]json.RawMessage
	if raw := get("chapters"); raw != nil && json.Unmarshal(raw, &chs) == nil {
		seen := map[time.Duration]bool{}
		for _, ch := range chs {
			var start time.Duration
			var title string
			okStart := false
			for k, v := range ch {
				switch strings.ToLower(k) {
				case "start", "time", "timestamp", "start_time":
					start, okStart = chapterTime(v)
				case "title", "name", "heading":
					title = strings.TrimSpace(textOf(v))
				}
			}
			if !okStart || title == "" || seen[start] {
				continue
			}
			seen[start] = true
			a.chapters = append(a.chapters, Chapter{Start: start, Title: title})
		}
		slices.SortStableFunc(a.chapters, func(x, y Chapter) int { return cmpDur(x.Start, y.Start) })
	}
	return a, true
}

// textOf reads a JSON string, or an array of strings joined by spaces.
func textOf(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, " ")
	}
	return ""
}

// chapterTime reads a chapter start: seconds as a number or a string,
// or "mm:ss" / "h:mm:ss".
func chapterTime(raw json.RawMessage) (time.Duration, bool) {
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		d, err := fromSeconds("start", f)
		return d, err == nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, false
	}
	s = strings.TrimSuffix(strings.Trim(strings.TrimSpace(s), "[]"), "s")
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return 0, false
	}
	total := 0.0
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, false
		}
		total = total*60 + v
	}
	d, err := fromSeconds("start", total)
	return d, err == nil
}
