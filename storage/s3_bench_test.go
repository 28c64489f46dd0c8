//go:build bench

package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mps-dev/mps/test/s3test"
)

// BenchmarkS3Upload compares the upload throughput of Store.Put (the S3
// backend) with direct minio-go PutObject calls ("mc cp"-style puts) of the
// same files to a local versitygw, side by side in one run, in alternating
// rounds. Run it with
//
//	go test -tags bench -run '^$' -bench S3Upload -benchtime 1x ./storage
//
// MPS_BENCH_ROUNDS sets the number of rounds (default 3).
func BenchmarkS3Upload(b *testing.B) {
	srv := s3test.Start(b)
	srv.Bucket(b, "bench")
	ctx := context.Background()
	st, err := NewS3(ctx, S3Config{
		Endpoint: srv.Endpoint, Bucket: "bench", Region: srv.Region,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	direct := srv.Client(b)
	rounds := 3
	if v := os.Getenv("MPS_BENCH_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	sets := []struct {
		name  string
		count int
		size  int
	}{
		{"20 x 8 MB", 20, 8 << 20},
		{"200 x 100 KB", 200, 100 << 10},
		{"4 x 48 MB (multipart)", 4, 48 << 20},
	}
	src := b.TempDir()
	for range b.N {
		fmt.Printf("\nS3 upload throughput to versitygw on loopback, %d rounds (MB = 10^6 bytes)\n", rounds)
		fmt.Printf("%-24s %14s %14s %8s\n", "files", "Store.Put", "PutObject", "ratio")
		for si, set := range sets {
			var paths []string
			for i := range set.count {
				p := filepath.Join(src, fmt.Sprintf("s%d-%d", si, i))
				buf := make([]byte, set.size)
				rand.Read(buf)
				if err := os.WriteFile(p, buf, 0o644); err != nil {
					b.Fatal(err)
				}
				paths = append(paths, p)
			}
			total := float64(set.count*set.size) / 1e6
			var tStore, tDirect time.Duration
			storePut := func(r int) {
				start := time.Now()
				for i, p := range paths {
					f, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					if err := st.Put(ctx, fmt.Sprintf("store/%d/%d", r, i), f, int64(set.size)); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
				tStore += time.Since(start)
			}
			directPut := func(r int) {
				start := time.Now()
				for i, p := range paths {
					f, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := direct.PutObject(ctx, "bench", fmt.Sprintf("direct/%d/%d", r, i), f, int64(set.size), minio.PutObjectOptions{}); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
				tDirect += time.Since(start)
			}
			for r := range rounds {
				if r%2 == 0 {
					storePut(r)
					directPut(r)
				} else {
					directPut(r)
					storePut(r)
				}
				// Keep the disk use down between rounds.
				for i := range paths {
					st.Delete(ctx, fmt.Sprintf("store/%d/%d", r, i))
					direct.RemoveObject(ctx, "bench", fmt.Sprintf("direct/%d/%d", r, i), minio.RemoveObjectOptions{})
				}
			}
			for _, p := range paths {
				os.Remove(p)
			}
			mbStore := total * float64(rounds) / tStore.Seconds()
			mbDirect := total * float64(rounds) / tDirect.Seconds()
			fmt.Printf("%-24s %9.1f MB/s %9.1f MB/s %8.2f\n", set.name, mbStore, mbDirect, mbStore/mbDirect)
			b.ReportMetric(mbStore/mbDirect, fmt.Sprintf("ratio-set%d", si))
		}
	}
}
