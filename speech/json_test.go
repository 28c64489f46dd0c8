package speech

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestTranscriptJSON(t *testing.T) {
	tr := Transcript{Engine: "pocketsphinx", Language: "en", Duration: 20 * time.Second, Segments: []Segment{
		{Start: 1226 * time.Millisecond, End: 2651 * time.Millisecond, Text: "the weather is nice today",
			Words: []Word{{Start: 1226 * time.Millisecond, End: 1400 * time.Millisecond, Text: "the"}}},
		{Start: 7 * time.Second, End: 9 * time.Second, Text: "thank you"},
	}}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"engine":"pocketsphinx","language":"en","duration":20,"segments":[` +
		`{"start":1.226,"end":2.651,"text":"the weather is nice today","words":[{"start":1.226,"end":1.4,"text":"the"}]},` +
		`{"start":7,"end":9,"text":"thank you"}]}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	var back Transcript
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Duration != tr.Duration || len(back.Segments) != 2 || back.Segments[0].Start != tr.Segments[0].Start ||
		back.Segments[0].Words[0].End != 1400*time.Millisecond || back.Segments[1].Words != nil {
		t.Errorf("round trip %+v", back)
	}
	if b, _ := json.Marshal(Transcript{}); !strings.Contains(string(b), `"segments":[]`) {
		t.Errorf("empty transcript %s", b)
	}
	if err := json.Unmarshal([]byte(`{"start":1e300,"end":1,"text":"x"}`), new(Segment)); err == nil {
		t.Error("absurd start accepted")
	}
}
