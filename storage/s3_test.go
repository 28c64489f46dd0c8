package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mps-dev/mps/test/s3test"
)

// newS3 starts versitygw with a bucket and returns a store on it.
func newS3(t *testing.T, prefix string) (*S3, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	srv.Bucket(t, "media")
	st, err := NewS3(context.Background(), s3Config(srv, prefix))
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

func s3Config(srv *s3test.Server, prefix string) S3Config {
	return S3Config{
		Endpoint:  srv.Endpoint,
		Bucket:    "media",
		Prefix:    prefix,
		Region:    srv.Region,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PathStyle: true,
	}
}

func TestS3(t *testing.T) {
	st, _ := newS3(t, "")
	testStore(t, st)
	if st.Name() != "s3://media/" {
		t.Fatalf("name %q", st.Name())
	}
}

func TestS3Prefix(t *testing.T) {
	st, srv := newS3(t, "/mps/node1/")
	testStore(t, st)
	if st.Name() != "s3://media/mps/node1" {
		t.Fatalf("name %q", st.Name())
	}
	ctx := context.Background()
	if err := st.Put(ctx, "a/b.mp4", strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	oi, err := srv.Client(t).StatObject(ctx, "media", "mps/node1/a/b.mp4", minio.StatObjectOptions{})
	if err != nil || oi.Size != 3 {
		t.Fatalf("object below the prefix: %+v %v", oi, err)
	}
	// Objects outside the prefix are not listed.
	if _, err := srv.Client(t).PutObject(ctx, "media", "outside/x", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	all, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range all {
		if strings.HasPrefix(i.Key, "outside") || strings.HasPrefix(i.Key, "mps/") {
			t.Fatalf("listed %q", i.Key)
		}
	}
}

func TestS3PresignedURL(t *testing.T) {
	st, _ := newS3(t, "pfx")
	ctx := context.Background()
	body := []byte("presigned body")
	if err := st.Put(ctx, "dl/file.mp4", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	u, err := st.URL(ctx, "dl/file.mp4", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "/media/pfx/dl/file.mp4") {
		t.Fatalf("url %s", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET presigned: %d %q", resp.StatusCode, got)
	}
	// A tampered URL is refused.
	resp, err = http.Get(strings.Replace(u, "file.mp4", "file.mp5", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered URL: %d", resp.StatusCode)
	}
}

// A 40 MB object goes multipart (ETag "...-N") and reads back identical,
// with a known and with an unknown size.
func TestS3Multipart(t *testing.T) {
	st, srv := newS3(t, "")
	ctx := context.Background()
	body := make([]byte, 40<<20)
	rand.Read(body)
	for _, c := range []struct {
		key  string
		size int64
	}{{"big/known.bin", int64(len(body))}, {"big/unknown.bin", -1}} {
		if err := st.Put(ctx, c.key, bytes.NewReader(body), c.size); err != nil {
			t.Fatalf("put %s: %v", c.key, err)
		}
		oi, err := srv.Client(t).StatObject(ctx, "media", c.key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(oi.ETag, "-") {
			t.Fatalf("%s: ETag %q is not a multipart ETag", c.key, oi.ETag)
		}
		rc, info, err := st.Get(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || info.Size != int64(len(body)) || !bytes.Equal(got, body) {
			t.Fatalf("%s: read back %d bytes (info %d), equal %v, err %v", c.key, len(got), info.Size, bytes.Equal(got, body), err)
		}
		rc, err = st.GetRange(ctx, c.key, 20<<20-5, 10)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body[20<<20-5:20<<20+5]) {
			t.Fatalf("%s: range across parts differs", c.key)
		}
	}
}

func TestS3PartSize(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket(t, "media")
	c := s3Config(srv, "")
	c.PartSize = 1 << 20
	if _, err := NewS3(context.Background(), c); err == nil || !strings.Contains(err.Error(), "part size") {
		t.Fatalf("tiny part size: %v", err)
	}
	c.PartSize = 5 << 20
	st, err := NewS3(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 12<<20)
	rand.Read(body)
	ctx := context.Background()
	if err := st.Put(ctx, "p", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	oi, err := srv.Client(t).StatObject(ctx, "media", "p", minio.StatObjectOptions{})
	if err != nil || !strings.HasSuffix(oi.ETag, "-3") {
		t.Fatalf("12 MiB in 5 MiB parts: ETag %q, %v", oi.ETag, err)
	}
}

func TestS3Errors(t *testing.T) {
	srv := s3test.Start(t)
	srv.Bucket(t, "media")
	ctx := context.Background()

	t.Run("WrongSecret", func(t *testing.T) {
		c := s3Config(srv, "")
		c.SecretKey = "wrong-secret"
		_, err := NewS3(ctx, c)
		if err == nil || !strings.Contains(err.Error(), "credentials refused") || !strings.Contains(err.Error(), srv.Endpoint) {
			t.Fatalf("wrong secret: %v", err)
		}
		t.Log(err)
	})
	t.Run("WrongAccessKey", func(t *testing.T) {
		c := s3Config(srv, "")
		c.AccessKey = "nobody"
		_, err := NewS3(ctx, c)
		if err == nil || !strings.Contains(err.Error(), "credentials refused") {
			t.Fatalf("wrong access key: %v", err)
		}
		t.Log(err)
	})
	t.Run("MissingBucket", func(t *testing.T) {
		c := s3Config(srv, "")
		c.Bucket = "no-such-bucket"
		_, err := NewS3(ctx, c)
		if err == nil || !strings.Contains(err.Error(), "bucket no-such-bucket does not exist") {
			t.Fatalf("missing bucket: %v", err)
		}
		t.Log(err)
	})
	t.Run("NoRegion", func(t *testing.T) {
		c := s3Config(srv, "")
		c.Region = "" // asked from the server
		if _, err := NewS3(ctx, c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("URLEndpoint", func(t *testing.T) {
		c := s3Config(srv, "")
		c.Endpoint = srv.URL()
		if _, err := NewS3(ctx, c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("BadConfig", func(t *testing.T) {
		for _, c := range []S3Config{{Bucket: "media"}, {Endpoint: srv.Endpoint}, {Endpoint: "ftp://x", Bucket: "b"}} {
			if _, err := NewS3(ctx, c); err == nil {
				t.Errorf("%+v accepted", c)
			}
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // a closed port: connections are refused
		c := s3Config(srv, "")
		c.Endpoint = addr
		start := time.Now()
		_, err = NewS3(ctx, c)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("unreachable: %v", err)
		}
		// The bound is a guarantee (no hang), not a performance figure.
		if took > CheckTimeout+2*time.Second {
			t.Fatalf("unreachable endpoint took %v, past the %v bound", took, CheckTimeout)
		}
		t.Logf("%v (after %v)", err, took.Round(time.Millisecond))
	})
	t.Run("ServerDown", func(t *testing.T) {
		st, err := NewS3(ctx, s3Config(srv, ""))
		if err != nil {
			t.Fatal(err)
		}
		srv.Stop()
		defer srv.Start()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err = st.Put(cctx, "x", strings.NewReader("x"), 1)
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("put while down: %v", err)
		}
		if _, err := st.Stat(cctx, "x"); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("stat while down: %v", err)
		}
	})
}
