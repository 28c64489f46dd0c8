package vod

import "encoding/json"

// Runners returns the runner of every task type.
func Runners() map[string]Runner {
	return map[string]Runner{
		TaskTranscode:  Transcode(),
		TaskSnapshot:   Snapshot(),
		TaskSprite:     Sprite(),
		TaskAnimated:   Animated(),
		TaskEnhance:    Enhance(),
		TaskQuality:    Quality(),
		TaskAdaptive:   Adaptive(),
		TaskCaptions:   Captions(),
		TaskHighlights: Highlights(),
		TaskQC:         QC(),
		TaskSummary:    Summary(),
	}
}

// Presets returns the built-in templates of every task type.
func Presets() map[string]map[string]json.RawMessage {
	return map[string]map[string]json.RawMessage{
		TaskTranscode:  TranscodePresets(),
		TaskSnapshot:   SnapshotPresets(),
		TaskSprite:     SpritePresets(),
		TaskAnimated:   AnimatedPresets(),
		TaskEnhance:    EnhancePresets(),
		TaskQuality:    QualityPresets(),
		TaskAdaptive:   AdaptivePresets(),
		TaskCaptions:   CaptionsPresets(),
		TaskHighlights: HighlightsPresets(),
		TaskQC:         QCPresets(),
		TaskSummary:    SummaryPresets(),
	}
}
