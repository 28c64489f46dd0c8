package vod

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
)

func TestWorkflows(t *testing.T) {
	ee := newEngine(t, 1)
	ctx := context.Background()
	ws := ee.e.Workflows()
	tasks := []TaskSpec{{Type: TaskTranscode, Template: "copy"}}

	for _, bad := range []Workflow{
		{Name: "a", On: "sunrise", Tasks: tasks},
		{Name: "a", On: OnRecordingFinished, Tasks: tasks},
		{Name: "a", On: OnRecordingFinished, Match: "[", Tasks: tasks},
		{Name: "a", On: OnFile, Folder: "../../etc", Tasks: tasks},
		{Name: "a", On: OnFile, Folder: "drop", Tasks: []TaskSpec{{Type: "juggle"}}},
		{Name: "a b", On: OnFile, Folder: "drop", Tasks: tasks},
	} {
		if _, err := ws.Put(ctx, bad); !errors.Is(err, ErrInvalidWorkflow) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	// A file dropped into a watched folder is processed once, after its
	// size held still for a scan.
	if created, err := ws.Put(ctx, Workflow{Name: "drop", On: OnFile, Folder: "drop", Tasks: tasks}); err != nil || !created {
		t.Fatalf("put: %v %v", created, err)
	}
	src, err := os.ReadFile(filepath.Join(ee.media, "in.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ee.media, "drop", "clip.mp4"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ws.scan(ctx)
	ws.scan(ctx)
	ws.scan(ctx)
	jobs, total, err := ee.e.List(ctx, "", 0, 10)
	if err != nil || total != 1 {
		t.Fatalf("want 1 job from the watched folder, got %d: %v", total, err)
	}
	if done := ee.wait(t, jobs[0].ID, StateSucceeded, StateFailed); done.State != StateSucceeded {
		t.Fatalf("watched-folder job: %+v", done)
	}

	// A recording event for a matching stream submits a job on the
	// recording; the same event again does not.
	ee.e.cfg.Inputs.Recording = func(id string) (string, error) {
		if id != "rec1" {
			return "", errors.New("no such recording")
		}
		return filepath.Join(ee.media, "in.mp4"), nil
	}
	if _, err := ws.Put(ctx, Workflow{Name: "rec", On: OnRecordingFinished, Match: "live/*", Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ee.bus.Publish(events.Event{Type: OnRecordingFinished, Stream: "live/cam1", Data: map[string]any{"id": "rec1"}})
	}
	ee.bus.Publish(events.Event{Type: OnRecordingFinished, Stream: "other/cam1", Data: map[string]any{"id": "rec1"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, total, _ = ee.e.List(ctx, "", 0, 10)
		if total >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	jobs, total, _ = ee.e.List(ctx, "", 0, 10)
	if total != 2 {
		t.Fatalf("want 1 job from the recording event, got %d jobs in all", total)
	}
	j := ee.wait(t, jobs[0].ID, StateSucceeded, StateFailed)
	var sc map[string]string
	_ = json.Unmarshal(j.Spec.SessionContext, &sc)
	if j.State != StateSucceeded || j.Spec.Input.Recording != "rec1" || sc["workflow"] != "rec" {
		t.Fatalf("recording workflow job: %+v", j)
	}
	if err := ws.Delete(ctx, "rec"); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Get(ctx, "rec"); !errors.Is(err, ErrNoWorkflow) {
		t.Fatalf("after delete: %v", err)
	}
}
