package vod

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

func TestTemplateStore(t *testing.T) {
	ee := newEngine(t, 1)
	ctx := context.Background()
	ts := ee.e.Templates()

	list, err := ts.List(ctx, TaskTranscode)
	if err != nil || len(list) != 1 || !list[0].Builtin || list[0].Name != "copy" {
		t.Fatalf("presets: %+v %v", list, err)
	}
	if _, err := ts.Put(ctx, Template{Type: TaskTranscode, Name: "copy", Params: json.RawMessage(`{}`)}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("overwrite a preset: %v", err)
	}
	if err := ts.Delete(ctx, TaskTranscode, "copy"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("delete a preset: %v", err)
	}
	for _, bad := range []Template{
		{Type: "juggle", Name: "x", Params: json.RawMessage(`{}`)},
		{Type: TaskTranscode, Name: "../x", Params: json.RawMessage(`{}`)},
		{Type: TaskTranscode, Name: "x", Params: json.RawMessage(`[1]`)},
	} {
		if _, err := ts.Put(ctx, bad); !errors.Is(err, ErrInvalidTemplate) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	mine := Template{Type: TaskTranscode, Name: "live-speed", Params: json.RawMessage(`{"realtime": true}`)}
	if created, err := ts.Put(ctx, mine); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	mine.Params = json.RawMessage(`{"realtime": false}`)
	if created, err := ts.Put(ctx, mine); err != nil || created {
		t.Fatalf("replace: %v %v", created, err)
	}
	got, err := ts.Get(ctx, TaskTranscode, "live-speed")
	if err != nil || string(got.Params) != `{"realtime":false}` || got.Builtin || got.UpdatedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}

	// A job on the user template, with an override.
	j, _, err := ee.e.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode, Template: "live-speed", Params: json.RawMessage(`{"realtime": false}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if done := ee.wait(t, j.ID, StateSucceeded, StateFailed); done.State != StateSucceeded {
		t.Fatalf("job on a user template: %+v", done)
	}
	if err := ts.Delete(ctx, TaskTranscode, "live-speed"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Get(ctx, TaskTranscode, "live-speed"); !errors.Is(err, ErrNoTemplate) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestMergeParams(t *testing.T) {
	got, err := mergeParams(json.RawMessage(`{"container":"mp4","video":{"codec":"h264","bitrate":1000}}`), json.RawMessage(`{"video":{"bitrate":2000},"audio":{"codec":"aac"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"audio":{"codec":"aac"},"container":"mp4","video":{"bitrate":2000,"codec":"h264"}}`
	if string(got) != want {
		t.Fatalf("merge = %s, want %s", got, want)
	}
}
