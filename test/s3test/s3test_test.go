package s3test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestServerStopStart(t *testing.T) {
	srv := Start(t)
	if !srv.Running() || !strings.HasPrefix(srv.Endpoint, "127.0.0.1:") {
		t.Fatalf("server %+v", srv)
	}
	srv.Bucket(t, "media")
	c := srv.Client(t)
	ctx := context.Background()
	if _, err := c.PutObject(ctx, "media", "a/b.txt", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	endpoint := srv.Endpoint

	srv.Stop()
	srv.Stop() // twice is fine
	if srv.Running() {
		t.Fatal("running after Stop")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.StatObject(cctx, "media", "a/b.txt", minio.StatObjectOptions{}); err == nil {
		t.Fatal("stat succeeded while stopped")
	}

	srv.Start()
	if srv.Endpoint != endpoint {
		t.Fatalf("endpoint changed: %s, was %s", srv.Endpoint, endpoint)
	}
	o, err := c.GetObject(ctx, "media", "a/b.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	o.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("after restart: %q %v", b, err)
	}
	ok, err := c.BucketExists(ctx, "media")
	if err != nil || !ok {
		t.Fatalf("bucket after restart: %v %v", ok, err)
	}
}

func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint || a.Dir == b.Dir {
		t.Fatalf("servers share %s / %s", a.Endpoint, a.Dir)
	}
	a.Bucket(t, "only-a")
	ok, err := b.Client(t).BucketExists(context.Background(), "only-a")
	if err != nil || ok {
		t.Fatalf("bucket of one server seen by the other: %v %v", ok, err)
	}
}

func TestBinary(t *testing.T) {
	p, err := Binary()
	if err != nil {
		t.Skip(err)
	}
	if !strings.HasSuffix(p, "versitygw") {
		t.Fatalf("binary %s", p)
	}
}
