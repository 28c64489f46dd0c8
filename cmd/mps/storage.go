package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/storage"
	"github.com/mps-dev/mps/vod"
)

// Key prefixes in the bucket.
const (
	recordingsPrefix = "recordings"
	jobsPrefix       = "jobs"
)

// objectStore is the S3 bucket of storage.type s3 and the spool that
// uploads to it; nil fields on a local-only server.
type objectStore struct {
	s3    *storage.S3
	spool *storage.Spool
}

// startStorage connects to the bucket of cfg (checking the endpoint, the
// credentials and the bucket, or failing with a clear error) and opens
// the upload spool.
func startStorage(ctx context.Context, cfg *config.Config, log *slog.Logger) (*objectStore, error) {
	sc := cfg.Storage
	if sc.Type != config.StorageTypeS3 {
		return &objectStore{}, nil
	}
	access, secret := sc.S3.S3Credentials()
	s3, err := storage.NewS3(ctx, storage.S3Config{Endpoint: sc.S3.Endpoint, Bucket: sc.S3.Bucket, Prefix: sc.S3.Prefix,
		Region: sc.S3.Region, AccessKey: access, SecretKey: secret, UseTLS: sc.S3.TLS, PathStyle: sc.S3.PathStyle, PartSize: sc.S3.PartSize})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	spool, err := storage.NewSpool(sc.Spool.Dir, s3, sc.Spool.MaxSize, log.With("component", "spool"))
	if err != nil {
		return nil, fmt.Errorf("storage spool %s: %w", sc.Spool.Dir, err)
	}
	log.Info("media storage", "store", s3.Name(), "spool", sc.Spool.Dir)
	return &objectStore{s3: s3, spool: spool}, nil
}

// recordingMirror uploads complete recording files below recordings/ in
// the bucket, or is nil without S3.
func (o *objectStore) recordingMirror() func(path, rel string) error {
	if o.spool == nil {
		return nil
	}
	return func(file, rel string) error {
		return o.spool.Add(context.Background(), file, path.Join(recordingsPrefix, rel), false)
	}
}

func (o *objectStore) close() {
	if o != nil && o.spool != nil {
		o.spool.Close()
	}
}

// registerSpoolMetrics exports the upload spool's state.
func registerSpoolMetrics(reg prometheus.Registerer, o *objectStore) error {
	if o.spool == nil {
		return nil
	}
	gauge := func(name, help string, v func(storage.SpoolStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(o.spool.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("mps_storage_spool_files", "Files waiting in the spool for upload.", func(s storage.SpoolStats) float64 { return float64(s.Queued) }),
		gauge("mps_storage_spool_bytes", "Bytes waiting in the spool for upload.", func(s storage.SpoolStats) float64 { return float64(s.QueuedBytes) }),
		gauge("mps_storage_spool_failing", "1 while uploads fail and the spool retries.", func(s storage.SpoolStats) float64 {
			if s.Failing {
				return 1
			}
			return 0
		}),
		gauge("mps_storage_uploaded_files", "Files uploaded since start.", func(s storage.SpoolStats) float64 { return float64(s.Uploaded) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("storage metrics: %w", err)
		}
	}
	return nil
}

// opener opens an object of the configured S3 endpoint in any bucket its
// credentials reach, for s3:// job inputs, or is nil without S3.
func (o *objectStore) opener() func(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	if o.s3 == nil {
		return nil
	}
	client := o.s3.Client()
	return func(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
		if _, err := client.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); err != nil {
			if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
				return nil, fmt.Errorf("%w: s3://%s/%s: no such object", vod.ErrBadInput, bucket, key)
			}
			return nil, fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
		}
		return client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	}
}

// uploadJobOutputs queues the output folder of every job that succeeds
// for upload below jobs/ in the bucket. It returns the function that
// stops it.
func (o *objectStore) uploadJobOutputs(bus *events.Bus, jobsDir string, log *slog.Logger) func() {
	if o.spool == nil || bus == nil {
		return func() {}
	}
	dirs := make(chan string, 64)
	done := make(chan struct{})
	cancel := bus.Subscribe(func(ev events.Event) {
		if ev.Type != vod.EventJobFinished || ev.Data["state"] != vod.StateSucceeded {
			return
		}
		if dir, _ := ev.Data["output_dir"].(string); dir != "" {
			select {
			case dirs <- dir:
			default:
				log.Warn("job outputs not uploaded: too many jobs finishing at once", "output_dir", dir)
			}
		}
	})
	go func() {
		defer close(done)
		for dir := range dirs {
			if err := o.queueFolder(jobsDir, dir); err != nil {
				log.Warn("job outputs not uploaded", "output_dir", dir, "error", err.Error())
			}
		}
	}()
	return func() {
		cancel()
		close(dirs)
		<-done
	}
}

// queueFolder adds every file below root/rel to the spool, as jobs/rel/....
func (o *objectStore) queueFolder(root, rel string) error {
	base := filepath.Join(root, filepath.FromSlash(rel))
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return o.spool.Add(context.Background(), p, path.Join(jobsPrefix, filepath.ToSlash(r)), false)
	})
}

// lister lists objects of the configured S3 endpoint, for s3 workflows,
// or is nil without S3.
func (o *objectStore) lister() func(ctx context.Context, bucket, prefix string) ([]vod.S3Object, error) {
	if o.s3 == nil {
		return nil
	}
	client := o.s3.Client()
	return func(ctx context.Context, bucket, prefix string) ([]vod.S3Object, error) {
		var out []vod.S3Object
		for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if obj.Err != nil {
				return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, obj.Err)
			}
			out = append(out, vod.S3Object{Key: obj.Key, Size: obj.Size, Modified: obj.LastModified})
		}
		return out, nil
	}
}

// presigner returns presigned URLs of existing objects valid for
// storage.s3.presign, or is nil when presigning is off.
func (o *objectStore) presigner(expiry time.Duration) func(ctx context.Context, key string) (string, bool) {
	if o.s3 == nil || expiry <= 0 {
		return nil
	}
	return func(ctx context.Context, key string) (string, bool) {
		if _, err := o.s3.Stat(ctx, key); err != nil {
			return "", false
		}
		u, err := o.s3.URL(ctx, key, expiry)
		return u, err == nil && u != ""
	}
}
