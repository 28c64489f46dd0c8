package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mps-dev/mps/test/s3test"
)

// s3Config is recordingConfig with storage on the S3 server's bucket and
// the spool in spool.
func s3Config(dir, spool string, s3 *s3test.Server, bucket, secret, rec string) string {
	return recordingConfig(dir, rec) + `
storage:
  type: s3
  s3:
    endpoint: "` + s3.Endpoint + `"
    bucket: ` + bucket + `
    prefix: mps
    region: ` + s3test.Region + `
    access_key: ` + s3.AccessKey + `
    secret_key: ` + secret + `
  spool:
    dir: "` + spool + `"
`
}

// TestRecordingToS3SurvivesAnOutage records a stream to S3 (fragmented MP4
// archives rolled over every 3 s) while the S3 server is killed and
// started again 20 s later: once the spool drains, every archive is in the
// bucket, byte for byte the local one, the archives follow each other
// without a gap, and an MP4 read back from S3 plays.
func TestRecordingToS3SurvivesAnOutage(t *testing.T) {
	t.Parallel()
	s3 := s3test.Start(t)
	s3.Bucket(t, "media")
	base := t.TempDir()
	dir, spool := filepath.Join(base, "rec"), filepath.Join(base, "spool")
	s := startServer(t, serverOptions{Config: s3Config(dir, spool, s3, "media", s3.SecretKey, `  rollover: 3s
`+recRuleAll)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := ffmpegPublish(t, ctx, s.RTMPURL("live/s3"), pubOptions{Size: "320x240"})
	waitRecordings(t, s, "live/s3", 20*time.Second, "an archive", func(rs []apiRecording) bool { return len(rs) >= 2 })

	s3.Stop()
	t.Log("S3 down")
	waitFor(t, 15*time.Second, "the spool to report failing uploads", func() bool {
		_, m := s.api(t, "GET", "/metrics", apiToken)
		return strings.Contains(string(m), "mps_storage_spool_failing 1")
	})
	time.Sleep(20 * time.Second)
	s3.Start()
	t.Log("S3 up again")
	time.Sleep(3 * time.Second)
	pub.Stop()
	recs := waitRecordingsDone(t, s, "live/s3", 2, 30*time.Second)

	waitFor(t, 60*time.Second, "the spool to drain", func() bool {
		_, m := s.api(t, "GET", "/metrics", apiToken)
		return strings.Contains(string(m), "mps_storage_spool_files 0") && strings.Contains(string(m), "mps_storage_spool_failing 0")
	})
	client := s3.Client(t)
	for i, r := range recs {
		local, err := os.ReadFile(recFile(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := client.GetObject(context.Background(), "media", "mps/recordings/"+r.Path, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		remote, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(local, remote) {
			t.Errorf("archive %d (%s): S3 has %d bytes (%v), local %d", i, r.Path, len(remote), err, len(local))
		}
		if i > 0 {
			if gap := r.Start.Sub(recs[i-1].End); gap < -50*time.Millisecond || gap > 50*time.Millisecond {
				t.Errorf("archives %d and %d: %s between them", i-1, i, gap)
			}
		}
	}
	t.Logf("%d archives in S3 after a 20 s outage", len(recs))
	// One read back from S3 plays.
	u, err := client.PresignedGetObject(context.Background(), "media", "mps/recordings/"+recs[len(recs)/2].Path, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", u.String()).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "0" {
		t.Errorf("the archive read back from S3 does not play: %v %s", err, out)
	}
}

// TestBadStorageConfig: a wrong S3 secret or a missing bucket stops the
// server at start with a clear error, not a hang.
func TestBadStorageConfig(t *testing.T) {
	t.Parallel()
	s3 := s3test.Start(t)
	s3.Bucket(t, "media")
	base := t.TempDir()
	for _, c := range []struct {
		bucket, secret, want string
	}{
		{"media", "wrong-secret", "credentials refused"},
		{"missing", s3.SecretKey, "missing does not exist"},
	} {
		_, err := tryStartServer(t, serverOptions{Config: s3Config(filepath.Join(base, "rec"), filepath.Join(base, "spool"), s3, c.bucket, c.secret, "")})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bucket %s secret %s: %v, want an error with %q", c.bucket, c.secret, err, c.want)
		}
	}
}

// TestJobWithS3InputAndOutputs runs a job on an s3:// input: the job reads
// the object and its outputs land in the bucket below jobs/.
func TestJobWithS3InputAndOutputs(t *testing.T) {
	t.Parallel()
	s3 := s3test.Start(t)
	s3.Bucket(t, "media")
	env := newJobEnv(t)
	clip := makeClip(t, filepath.Join(t.TempDir(), "up.mp4"), clipOptions{Dur: 3})
	client := s3.Client(t)
	if _, err := client.FPutObject(context.Background(), "media", "uploads/up.mp4", clip, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	withPresign := strings.Replace(s3Config(filepath.Join(base, "rec"), filepath.Join(base, "spool"), s3, "media", s3.SecretKey, ""),
		"  spool:", "    presign: 1m\n  spool:", 1)
	s := startServer(t, serverOptions{Config: withPresign +
		env.jobsSection(`  watch_interval: 500ms
  workflows:
    - name: drop
      on: s3
      bucket: media
      prefix: incoming/
      tasks:
        - {type: snapshot, template: snapshot-cover}
`)})
	j := s.mustSubmit(t, jobSpec{Input: map[string]string{"url": "s3://media/uploads/up.mp4"}, Tasks: []jobTask{
		{Type: "snapshot", Template: "snapshot-cover"},
		{Type: "transcode", Template: "mp4-480p"},
	}})
	j = waitJobSucceeded(t, s, j.ID, 2*time.Minute)
	for _, task := range j.Tasks {
		for _, o := range task.Outputs {
			key := "mps/jobs/" + o.Path
			var info minio.ObjectInfo
			waitFor(t, 30*time.Second, "output "+key+" in the bucket", func() bool {
				var err error
				info, err = client.StatObject(context.Background(), "media", key, minio.StatObjectOptions{})
				return err == nil
			})
			if info.Size != o.Size {
				t.Errorf("%s: %d bytes in S3, the job says %d", key, info.Size, o.Size)
			}
		}
	}
	// An output this node has no copy of (made on another node, say) is
	// served from the bucket through a presigned URL.
	snap := j.Tasks[0].Outputs[0]
	if err := os.Remove(filepath.Join(env.JobsDir, filepath.FromSlash(snap.Path))); err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.outputURL(snap))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "X-Amz-Signature") {
		t.Fatalf("output missing locally: %d %q, want a redirect to a presigned URL", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b := s.fetchOutput(t, snap); int64(len(b)) != snap.Size {
		t.Errorf("output through the presigned URL: %d bytes, want %d", len(b), snap.Size)
	}

	// An upload below the watched prefix runs the workflow, once.
	if _, err := client.FPutObject(context.Background(), "media", "incoming/new.mp4", clip, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	jobsOf := func(u string) []apiJob {
		_, b := s.api(t, http.MethodGet, "/api/v1/jobs?limit=100", apiToken)
		var list struct {
			Jobs []apiJob `json:"jobs"`
		}
		_ = json.Unmarshal(b, &list)
		var out []apiJob
		for _, lj := range list.Jobs {
			if lj.Spec.Input.URL == u {
				out = append(out, lj)
			}
		}
		return out
	}
	waitFor(t, time.Minute, "the s3 workflow's job to succeed", func() bool {
		js := jobsOf("s3://media/incoming/new.mp4")
		return len(js) == 1 && js[0].State == "succeeded"
	})
	time.Sleep(1500 * time.Millisecond) // more scans: still one job
	if n := len(jobsOf("s3://media/incoming/new.mp4")); n != 1 {
		t.Errorf("the workflow made %d jobs for one object, want 1", n)
	}
	missing := s.mustSubmit(t, jobSpec{Input: map[string]string{"url": "s3://media/uploads/none.mp4"}, Tasks: []jobTask{{Type: "snapshot", Template: "snapshot-cover"}}})
	if f := waitJobFinished(t, s, missing.ID, time.Minute); f.State != "failed" || f.Attempts != 1 || !strings.Contains(f.Error, "no such object") {
		t.Errorf("a missing S3 input: %v", f)
	}
}
