package config

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mps-dev/mps/vod"
)

// AI configures media AI: the speech recognition engines of captions and
// summaries, and the chat-completions endpoint of LLM summaries.
type AI struct {
	// PocketsphinxModel is the folder of the pocketsphinx model (Debian's
	// pocketsphinx-en-us) that the built-in "pocketsphinx" engine uses.
	PocketsphinxModel string `koanf:"pocketsphinx_model"`
	// SpeechEngines are OpenAI-compatible transcription endpoints (whisper.cpp's
	// server, faster-whisper servers, ...). A captions or summary template
	// names the engine it uses.
	SpeechEngines []SpeechEngine `koanf:"speech_engines"`
	// Chat is the OpenAI-compatible chat-completions endpoint of summaries
	// with method "llm". An empty URL leaves them unavailable.
	Chat ChatEndpoint `koanf:"chat"`
	// LiveCaptions caption the streams they match from their first
	// publish; the API starts and stops captions of any stream too.
	LiveCaptions []LiveCaptionRule `koanf:"live_captions"`
	// LiveQC watch the streams they match for technical problems from
	// their first publish, and publish each as a qc.alert event.
	LiveQC []LiveQCRule `koanf:"live_qc"`
}

// LiveQCRule runs a qc template live on the streams whose name matches.
type LiveQCRule struct {
	// Match is a path.Match glob on the stream name, such as "live/*".
	Match string `koanf:"match"`
	// Template is a built-in qc preset (default "qc-default").
	Template string `koanf:"template"`
}

// DefaultQCTemplate is the qc preset a live_qc rule runs by default.
const DefaultQCTemplate = "qc-default"

// LiveQCRuleFor returns the first live_qc rule that matches streamName,
// with its template filled in.
func (c *Config) LiveQCRuleFor(streamName string) (LiveQCRule, bool) {
	for _, r := range c.AI.LiveQC {
		if ok, err := path.Match(r.Match, streamName); err == nil && ok {
			if r.Template == "" {
				r.Template = DefaultQCTemplate
			}
			return r, true
		}
	}
	return LiveQCRule{}, false
}

// LiveCaptionRule captions live the streams whose name matches.
type LiveCaptionRule struct {
	// Match is a path.Match glob on the stream name, such as "live/*".
	Match string `koanf:"match"`
	// Engine is "pocketsphinx" (the default) or a speech_engines name.
	Engine string `koanf:"engine"`
	// Language is the spoken language, ISO 639-1 (default "en").
	Language string `koanf:"language"`
	// Label names the subtitles rendition (default from the language).
	Label string `koanf:"label"`
}

// LiveCaptionRuleFor returns the first live_captions rule that matches
// streamName.
func (c *Config) LiveCaptionRuleFor(streamName string) (LiveCaptionRule, bool) {
	for _, r := range c.AI.LiveCaptions {
		if ok, err := path.Match(r.Match, streamName); err == nil && ok {
			return r, true
		}
	}
	return LiveCaptionRule{}, false
}

// SpeechEngine is one OpenAI-compatible transcription endpoint.
type SpeechEngine struct {
	// Name is what templates call it; "pocketsphinx" is taken.
	Name string `koanf:"name"`
	// URL is the full endpoint, such as
	// http://127.0.0.1:8000/v1/audio/transcriptions.
	URL    string `koanf:"url"`
	APIKey string `koanf:"api_key"`
	// Model is sent as the request's model; default "whisper-1".
	Model string `koanf:"model"`
	// Language, when set, is sent as the spoken language (ISO 639-1).
	Language string `koanf:"language"`
	// Timeout bounds one request; default 10 min.
	Timeout time.Duration `koanf:"timeout"`
}

// ChatEndpoint is an OpenAI-compatible chat-completions endpoint.
type ChatEndpoint struct {
	// URL is the full endpoint, such as
	// http://127.0.0.1:8000/v1/chat/completions.
	URL    string `koanf:"url"`
	APIKey string `koanf:"api_key"`
	Model  string `koanf:"model"`
	// Timeout bounds one request.
	Timeout time.Duration `koanf:"timeout"`
}

// PocketsphinxEngine is the name of the built-in offline engine.
const PocketsphinxEngine = "pocketsphinx"

// DefaultAI is the ai section of Default: pocketsphinx with Debian's
// model, no remote engine and no chat endpoint.
func DefaultAI() AI {
	return AI{
		PocketsphinxModel: "/usr/share/pocketsphinx/model/en-us",
		SpeechEngines:     []SpeechEngine{},
		LiveCaptions:      []LiveCaptionRule{},
		LiveQC:            []LiveQCRule{},
		Chat:              ChatEndpoint{Timeout: 2 * time.Minute},
	}
}

var engineName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (c *Config) validateAI() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	a := c.AI
	if a.PocketsphinxModel == "" {
		add("ai.pocketsphinx_model: must name the model folder (Debian: /usr/share/pocketsphinx/model/en-us)")
	}
	seen := map[string]int{}
	for i, e := range a.SpeechEngines {
		where := fmt.Sprintf("ai.speech_engines[%d]", i)
		switch {
		case !engineName.MatchString(e.Name):
			add("%s.name %q: want lower-case letters, digits, - and _", where, e.Name)
		case e.Name == PocketsphinxEngine:
			add("%s.name %q: taken by the built-in engine", where, e.Name)
		default:
			if j, dup := seen[e.Name]; dup {
				add("%s.name %q: the same name as ai.speech_engines[%d]", where, e.Name, j)
			}
			seen[e.Name] = i
		}
		if err := checkHTTPURL(e.URL); err != nil {
			add("%s.url %q: %w", where, e.URL, err)
		}
		if e.Timeout < 0 {
			add("%s.timeout %s: must be 0 (the default) or more", where, e.Timeout)
		}
	}
	if a.Chat.URL != "" {
		if err := checkHTTPURL(a.Chat.URL); err != nil {
			add("ai.chat.url %q: %w", a.Chat.URL, err)
		}
	}
	for i, r := range a.LiveCaptions {
		where := fmt.Sprintf("ai.live_captions[%d]", i)
		if _, err := path.Match(r.Match, ""); err != nil || r.Match == "" {
			add("%s.match %q: want a glob such as \"live/*\"", where, r.Match)
		}
		if _, ok := seen[r.Engine]; !ok && r.Engine != "" && r.Engine != PocketsphinxEngine {
			add("%s.engine %q: not pocketsphinx nor a name in ai.speech_engines", where, r.Engine)
		}
	}
	presets := vod.QCPresets()
	for i, r := range a.LiveQC {
		where := fmt.Sprintf("ai.live_qc[%d]", i)
		if _, err := path.Match(r.Match, ""); err != nil || r.Match == "" {
			add("%s.match %q: want a glob such as \"live/*\"", where, r.Match)
		}
		if _, ok := presets[r.Template]; !ok && r.Template != "" {
			add("%s.template %q: not a qc preset (%s)", where, r.Template, strings.Join(slices.Sorted(maps.Keys(presets)), ", "))
		}
	}
	if a.Chat.Timeout <= 0 {
		add("ai.chat.timeout %s: must be more than 0", a.Chat.Timeout)
	}
	return errs
}
