package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/speech"
)

// CaptionsParams is the template of a captions task: the input's speech
// recognised by a speech engine, shaped into caption cues and written as
// WebVTT and SubRip files, optionally burned into a copy of the video and
// attached to the job's adaptive (HLS and DASH) output as a subtitles
// rendition.
type CaptionsParams struct {
	// Engine is the name of the speech engine (one of the server's
	// configured engines); default "pocketsphinx".
	Engine string `json:"engine,omitempty"`
	// Language is the speech's BCP 47 language tag; default "en".
	Language string `json:"language,omitempty"`
	// Formats are the caption files to write: vtt (captions.vtt) and srt
	// (captions.srt). Default both.
	Formats []string `json:"formats,omitempty"`
	// MaxLineChars is the longest caption line, in characters (default 42).
	MaxLineChars int `json:"max_line_chars,omitempty"`
	// MaxLines is the most lines a cue shows (default 2).
	MaxLines int `json:"max_lines,omitempty"`
	// MaxCueDuration is the longest a cue stays on screen, in seconds
	// (default 6).
	MaxCueDuration float64 `json:"max_cue_duration,omitempty"`
	// BurnIn also writes captioned.mp4: the input with the captions drawn
	// into the picture (H.264, the audio copied when it is AAC).
	BurnIn bool `json:"burn_in,omitempty"`
	// Attach adds the captions as a subtitles rendition to the job's
	// adaptive output, whichever of the two tasks runs first (default
	// true).
	Attach *bool `json:"attach,omitempty"`
	// Label is the rendition's name in players; default the language's
	// English name ("English").
	Label string `json:"label,omitempty"`
}

// Captions limits and defaults.
const (
	capDefaultEngine   = "pocketsphinx"
	capDefaultLanguage = "en"
	capFormatVTT       = "vtt"
	capFormatSRT       = "srt"
	capMaxLineChars    = 200
	capMinLineChars    = 10
	capMaxLines        = 5
	capMinCueDuration  = 0.5
	capMaxCueDuration  = 30.0
	capMaxLabel        = 64
	capTextData        = 500
	// Progress shares: recognition takes capSpeechShare of the task
	// (capSpeechShareBurn when the captions are also burned in).
	capSpeechShare     = 0.9
	capSpeechShareBurn = 0.6
	capBurnEnd         = 0.95
)

// Captions output files.
const (
	capVTTFile        = "captions.vtt"
	capSRTFile        = "captions.srt"
	capTranscriptFile = "transcript.json"
	capBurnedFile     = "captioned.mp4"
)

var capLanguageRe = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)

// capLanguageNames are the English names of common languages, the default
// label of a subtitles rendition.
var capLanguageNames = map[string]string{
	"ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
	"es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
	"id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "no": "Norwegian",
	"pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "th": "Thai",
	"tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}

func (p *CaptionsParams) applyDefaults() {
	if p.Engine == "" {
		p.Engine = capDefaultEngine
	}
	if p.Language == "" {
		p.Language = capDefaultLanguage
	}
	if len(p.Formats) == 0 {
		p.Formats = []string{capFormatVTT, capFormatSRT}
	}
	if p.MaxLineChars == 0 {
		p.MaxLineChars = captions.DefaultMaxLineChars
	}
	if p.MaxLines == 0 {
		p.MaxLines = captions.DefaultMaxLines
	}
	if p.MaxCueDuration == 0 {
		p.MaxCueDuration = captions.DefaultMaxDuration.Seconds()
	}
	if p.Attach == nil {
		t := true
		p.Attach = &t
	}
	if p.Label == "" {
		primary, _, _ := strings.Cut(strings.ToLower(p.Language), "-")
		p.Label = capLanguageNames[primary]
		if p.Label == "" {
			p.Label = p.Language
		}
	}
}

func (p *CaptionsParams) validate() error {
	switch {
	case strings.TrimSpace(p.Engine) != p.Engine || strings.ContainsAny(p.Engine, "\r\n"):
		return fmt.Errorf("%w: engine %q: not an engine name", ErrBadInput, p.Engine)
	case !capLanguageRe.MatchString(p.Language):
		return fmt.Errorf("%w: language %q: want a BCP 47 tag such as en or pt-BR", ErrBadInput, p.Language)
	case p.MaxLineChars < capMinLineChars || p.MaxLineChars > capMaxLineChars:
		return fmt.Errorf("%w: max_line_chars %d: must be from %d to %d", ErrBadInput, p.MaxLineChars, capMinLineChars, capMaxLineChars)
	case p.MaxLines < 1 || p.MaxLines > capMaxLines:
		return fmt.Errorf("%w: max_lines %d: must be from 1 to %d", ErrBadInput, p.MaxLines, capMaxLines)
	case math.IsNaN(p.MaxCueDuration) || p.MaxCueDuration < capMinCueDuration || p.MaxCueDuration > capMaxCueDuration:
		return fmt.Errorf("%w: max_cue_duration %g: must be from %g to %g seconds", ErrBadInput, p.MaxCueDuration, capMinCueDuration, capMaxCueDuration)
	case utf8.RuneCountInString(p.Label) > capMaxLabel || strings.ContainsAny(p.Label, "\"\r\n"):
		return fmt.Errorf("%w: label %q: at most %d characters, without quotes or line breaks", ErrBadInput, p.Label, capMaxLabel)
	}
	seen := map[string]bool{}
	for i, f := range p.Formats {
		switch {
		case f != capFormatVTT && f != capFormatSRT:
			return fmt.Errorf("%w: formats[%d] %q: want vtt or srt", ErrBadInput, i, f)
		case seen[f]:
			return fmt.Errorf("%w: formats[%d] %q: listed twice", ErrBadInput, i, f)
		}
		seen[f] = true
	}
	return nil
}

// capDecode decodes, defaults and validates a captions task's params.
func capDecode(raw json.RawMessage) (CaptionsParams, error) {
	var p CaptionsParams
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	p.applyDefaults()
	return p, p.validate()
}

// captionsRunner is the captions task type's Runner.
type captionsRunner struct{}

// Captions returns the runner of captions tasks (see CaptionsParams). Its
// outputs are captions.vtt (Kind "vtt") and captions.srt (Kind "srt") as
// the formats ask, transcript.json (Kind "transcript", the engine's
// speech.Transcript) and, with burn_in, captioned.mp4 (Kind "video").
// The caption files and the transcript carry a summary in Data: engine,
// language, label, cues, words and the first 500 characters of the text.
//
// Errors: an input without audio is ErrBadInput, and so is an unknown
// engine. A remote engine answering an HTTP error status fails with that
// status in the message; a 4xx status other than 408 and 429 (a bad key,
// model or request: the engine's configuration) is ErrBadInput, since
// retrying cannot fix it, while 5xx, 408, 429 and an unreachable engine
// are retried.
func Captions() Runner { return captionsRunner{} }

// CheckParams validates a captions template without running it. The
// engine name is checked when a task runs, against the engines the
// server has.
func (captionsRunner) CheckParams(params json.RawMessage) error {
	_, err := capDecode(params)
	return err
}

func (captionsRunner) Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	p, err := capDecode(params)
	if err != nil {
		return nil, err
	}
	engine, ok := env.Speech[p.Engine]
	if !ok || engine == nil {
		known := make([]string, 0, len(env.Speech))
		for name := range env.Speech {
			known = append(known, name)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("%w: engine %q: unknown; the engines are: %s", ErrBadInput, p.Engine, strings.Join(known, ", "))
	}
	if in.Audio == nil {
		return nil, fmt.Errorf("%w: the input has no audio: captions need speech", ErrBadInput)
	}
	if p.BurnIn && in.Video == nil {
		return nil, fmt.Errorf("%w: burn_in: the input has no video stream to burn the captions into", ErrBadInput)
	}
	progress := env.progress()
	share := capSpeechShare
	if p.BurnIn {
		share = capSpeechShareBurn
	}

	tr, err := engine.Transcribe(ctx, in.Path, func(f float64) { progress(min(1, max(0, f)) * share) })
	if err != nil {
		return nil, capEngineError(ctx, p.Engine, err)
	}
	if tr == nil {
		tr = &speech.Transcript{}
	}
	if tr.Engine == "" {
		tr.Engine = engine.Name()
	}
	if tr.Language == "" {
		tr.Language = p.Language
	}
	if tr.Duration == 0 {
		tr.Duration = in.Duration
	}
	cues := captions.FromTranscript(tr, captions.Options{
		MaxLineChars: p.MaxLineChars,
		MaxLines:     p.MaxLines,
		MaxDuration:  time.Duration(math.Round(p.MaxCueDuration * float64(time.Second))),
	})
	var vtt, srt bytes.Buffer
	if err := captions.WriteVTT(&vtt, cues); err != nil {
		return nil, fmt.Errorf("captions: %w", err)
	}
	if err := captions.WriteSRT(&srt, cues); err != nil {
		return nil, fmt.Errorf("captions: %w", err)
	}
	trJSON, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("captions: transcript: %w", err)
	}

	text := strings.TrimSpace(tr.Text())
	if utf8.RuneCountInString(text) > capTextData {
		text = string([]rune(text)[:capTextData])
	}
	data := func() map[string]any {
		return map[string]any{
			"engine": tr.Engine, "language": p.Language, "label": p.Label, "cues": len(cues),
			"words": len(strings.Fields(tr.Text())), "text": text, "attach": *p.Attach,
		}
	}
	var outs []Output
	write := func(name, kind, mime string, body []byte, d map[string]any) error {
		if err := os.WriteFile(filepath.Join(env.OutDir, name), body, 0o644); err != nil {
			return fmt.Errorf("captions: %w", err)
		}
		outs = append(outs, Output{Kind: kind, Path: name, MIME: mime, Size: int64(len(body)), Duration: in.Duration.Seconds(), Data: d})
		return nil
	}
	if slices.Contains(p.Formats, capFormatVTT) {
		if err := write(capVTTFile, "vtt", "text/vtt", vtt.Bytes(), data()); err != nil {
			return nil, err
		}
	}
	if slices.Contains(p.Formats, capFormatSRT) {
		if err := write(capSRTFile, "srt", "application/x-subrip", srt.Bytes(), nil); err != nil {
			return nil, err
		}
	}
	if err := write(capTranscriptFile, "transcript", "application/json", trJSON, data()); err != nil {
		return nil, err
	}

	if p.BurnIn {
		o, err := capBurnIn(ctx, env, in, srt.Bytes(), func(f float64) { progress(share + f*(capBurnEnd-share)) })
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}

	if *p.Attach {
		if prev := capLastPrevious(env.Previous, TaskAdaptive); prev != nil {
			if err := capAttach(prev.Dir, p.Language, p.Label, vtt.Bytes()); err != nil {
				return nil, err
			}
			for i := range outs {
				if outs[i].Data != nil {
					outs[i].Data["attached"] = TaskAdaptive
				}
			}
		}
	}
	progress(1)
	return outs, nil
}

// capEngineError maps a speech engine's failure to the task's error.
func capEngineError(ctx context.Context, engine string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("captions: %w", context.Cause(ctx))
	}
	if errors.Is(err, speech.ErrNoAudio) {
		return fmt.Errorf("%w: the input has no audio: captions need speech (%v)", ErrBadInput, err)
	}
	if errors.Is(err, ErrBadInput) {
		return err
	}
	var he *speech.HTTPError
	if errors.As(err, &he) {
		msg := fmt.Sprintf("captions: speech engine %s answered HTTP %d", engine, he.Status)
		if he.Status >= 400 && he.Status < 500 && he.Status != http.StatusRequestTimeout && he.Status != http.StatusTooManyRequests {
			// The engine refuses the request (a bad key, model or
			// language): its configuration needs fixing, retrying won't.
			return fmt.Errorf("%w: %s: %v", ErrBadInput, msg, err)
		}
		return fmt.Errorf("%s: %w", msg, err)
	}
	return fmt.Errorf("captions: speech engine %s: %w", engine, err)
}

// capLastPrevious is the job's latest earlier task of type typ, or nil.
func capLastPrevious(prev []PreviousTask, typ string) *PreviousTask {
	for i := len(prev) - 1; i >= 0; i-- {
		if prev[i].Type == typ {
			return &prev[i]
		}
	}
	return nil
}

// capSubsFile is the name of a language's WebVTT file in an adaptive
// output folder.
func capSubsFile(lang string) string { return "subs-" + lang + ".vtt" }

// capAttach writes vtt into an adaptive output folder and adds it to the
// folder's manifests as the default subtitles rendition.
func capAttach(dir, lang, label string, vtt []byte) error {
	name := capSubsFile(lang)
	if err := os.WriteFile(filepath.Join(dir, name), vtt, 0o644); err != nil {
		return fmt.Errorf("captions: attach to the adaptive output: %w", err)
	}
	if err := packager.AddSubtitles(dir, packager.Subtitles{Name: label, Language: lang, VTT: name, Default: true}); err != nil {
		return fmt.Errorf("captions: attach to the adaptive output: %w", err)
	}
	return nil
}

// captionsAttachToAdaptive is the adaptive task's hook: it adds the
// captions of the job's earlier captions tasks (those with a vtt output
// and attach on) to the adaptive output just written in env.OutDir, and
// notes their languages in the first output's Data ("subtitles") and the
// manifests' new sizes.
func captionsAttachToAdaptive(env Env, outs []Output) ([]Output, error) {
	var langs []string
	for _, prev := range env.Previous {
		if prev.Type != TaskCaptions {
			continue
		}
		for _, o := range prev.Outputs {
			if o.Kind != "vtt" {
				continue
			}
			lang, _ := o.Data["language"].(string)
			label, _ := o.Data["label"].(string)
			if attach, ok := o.Data["attach"].(bool); (ok && !attach) || lang == "" {
				continue
			}
			vtt, err := os.ReadFile(filepath.Join(prev.Dir, filepath.FromSlash(o.Path)))
			if err != nil {
				return nil, fmt.Errorf("adaptive: subtitles of the captions task: %w", err)
			}
			if err := capAttach(env.OutDir, lang, label, vtt); err != nil {
				return nil, fmt.Errorf("adaptive: %w", err)
			}
			if !slices.Contains(langs, lang) {
				langs = append(langs, lang)
			}
		}
	}
	if len(langs) == 0 {
		return outs, nil
	}
	for i := range outs {
		if st, err := os.Stat(filepath.Join(env.OutDir, outs[i].Path)); err == nil {
			outs[i].Size = st.Size()
		}
	}
	if len(outs) > 0 {
		if outs[0].Data == nil {
			outs[0].Data = map[string]any{}
		}
		outs[0].Data["subtitles"] = langs
	}
	return outs, nil
}

// capBurnIn writes captioned.mp4: the input with srt drawn into the
// picture by ffmpeg's subtitles filter (libass), H.264 (x264 veryfast)
// and the audio copied when it is AAC, else encoded to AAC.
func capBurnIn(ctx context.Context, env Env, in Media, srt []byte, progress func(float64)) (Output, error) {
	// The filter's file name goes through two levels of ffmpeg escaping:
	// keep it plain by writing the SRT under a name of our own.
	work, err := os.MkdirTemp(env.OutDir, ".captions-")
	if err != nil {
		return Output{}, fmt.Errorf("captions: work folder: %w", err)
	}
	defer os.RemoveAll(work)
	subs := filepath.Join(work, "subs.srt")
	if err := os.WriteFile(subs, srt, 0o644); err != nil {
		return Output{}, fmt.Errorf("captions: %w", err)
	}
	out := filepath.Join(env.OutDir, capBurnedFile)
	args := []string{"-i", in.Path, "-map", "0:v:0", "-map", "0:a:0?",
		"-vf", "subtitles=filename=" + capFilterEscape(subs),
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"}
	if in.Audio != nil && in.Audio.Codec == "aac" {
		args = append(args, "-c:a", "copy")
	} else {
		args = append(args, "-c:a", "aac", "-b:a", "128k")
	}
	args = append(args, "-sn", "-dn", "-movflags", "+faststart", "-f", "mp4", out)
	burnEnv := env
	burnEnv.Progress = progress
	if err := RunFFmpeg(ctx, burnEnv, in.Duration, args...); err != nil {
		_ = os.Remove(out)
		if ctx.Err() != nil {
			return Output{}, err
		}
		return Output{}, fmt.Errorf("captions: burn in: %w", err)
	}
	m, err := Probe(ctx, env, out)
	if err != nil {
		return Output{}, fmt.Errorf("captions: burn in: probe %s: %v", capBurnedFile, err)
	}
	o := Output{Kind: "video", Path: capBurnedFile, MIME: "video/mp4", Size: m.Size, Duration: m.Duration.Seconds()}
	if m.Video != nil {
		o.Width, o.Height = m.Video.Width, m.Video.Height
	}
	return o, nil
}

// capFilterEscape escapes s as a filter option value inside a filtergraph
// (ffmpeg-filters(1), "Notes on filtergraph escaping"): first for the
// option parser, then for the graph parser.
func capFilterEscape(s string) string {
	opt := strings.NewReplacer(`\`, `\\`, `'`, `\'`, `:`, `\:`).Replace(s)
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, `[`, `\[`, `]`, `\]`, `,`, `\,`, `;`, `\;`).Replace(opt)
}

// CaptionsPresets returns the built-in captions templates:
//
//   - captions-en: English speech recognised by pocketsphinx, as WebVTT
//     and SRT, lines of at most 42 characters, 2 lines a cue, not burned
//     in.
func CaptionsPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"captions-en": json.RawMessage(`{"engine":"pocketsphinx","language":"en","formats":["vtt","srt"],"max_line_chars":42,"max_lines":2,"burn_in":false}`),
	}
}
