package config

import (
	"strings"
	"testing"
	"time"
)

func TestAISection(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
ai:
  speech_engines:
    - {name: whisper, url: "http://127.0.0.1:8000/v1/audio/transcriptions", model: base.en, timeout: 30s}
  chat:
    url: http://127.0.0.1:8000/v1/chat/completions
    model: llama
`))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.AI.SpeechEngines
	if len(e) != 1 || e[0].Name != "whisper" || e[0].Model != "base.en" || e[0].Timeout != 30*time.Second {
		t.Fatalf("speech engines %+v", e)
	}
	if cfg.AI.Chat.Model != "llama" || cfg.AI.Chat.Timeout != 2*time.Minute || cfg.AI.PocketsphinxModel == "" {
		t.Fatalf("ai %+v", cfg.AI)
	}
}

func TestAISectionErrors(t *testing.T) {
	_, err := load(t, writeConfig(t, `
ai:
  pocketsphinx_model: ""
  speech_engines:
    - {name: pocketsphinx, url: "http://x/v1/audio/transcriptions"}
    - {name: Bad Name, url: "ftp://x"}
    - {name: w, url: "http://a/"}
    - {name: w, url: "http://b/"}
  chat: {url: "not a url", timeout: 0s}
`))
	if err == nil {
		t.Fatal("bad ai section accepted")
	}
	for _, want := range []string{
		"ai.pocketsphinx_model",
		`ai.speech_engines[0].name "pocketsphinx": taken by the built-in engine`,
		`ai.speech_engines[1].name "Bad Name"`,
		`ai.speech_engines[1].url "ftp://x"`,
		`ai.speech_engines[3].name "w": the same name as ai.speech_engines[2]`,
		`ai.chat.url "not a url"`,
		"ai.chat.timeout 0s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLiveCaptionRules(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
ai:
  speech_engines:
    - {name: whisper, url: "http://127.0.0.1:8000/v1/audio/transcriptions"}
  live_captions:
    - {match: "live/talk-*", engine: whisper, language: de}
    - {match: "live/*"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := cfg.LiveCaptionRuleFor("live/talk-1"); !ok || r.Engine != "whisper" || r.Language != "de" {
		t.Errorf("live/talk-1: %+v %v", r, ok)
	}
	if r, ok := cfg.LiveCaptionRuleFor("live/cam"); !ok || r.Engine != "" {
		t.Errorf("live/cam: %+v %v", r, ok)
	}
	if _, ok := cfg.LiveCaptionRuleFor("other/cam"); ok {
		t.Error("other/cam matched")
	}
	_, err = load(t, writeConfig(t, `
ai:
  live_captions:
    - {match: "[", engine: nope}
`))
	if err == nil || !strings.Contains(err.Error(), `ai.live_captions[0].match "["`) ||
		!strings.Contains(err.Error(), `ai.live_captions[0].engine "nope"`) {
		t.Fatalf("bad rule: %v", err)
	}
}

func TestLiveQCRules(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
ai:
  live_qc:
    - {match: "live/*"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := cfg.LiveQCRuleFor("live/cam"); !ok || r.Template != "qc-default" {
		t.Errorf("live/cam: %+v %v", r, ok)
	}
	_, err = load(t, writeConfig(t, `
ai:
  live_qc:
    - {match: "live/*", template: nope}
`))
	if err == nil || !strings.Contains(err.Error(), `ai.live_qc[0].template "nope": not a qc preset (qc-default)`) {
		t.Fatalf("bad template: %v", err)
	}
}
