package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultPartSize is the multipart part size of S3 uploads when
// S3Config.PartSize is 0. Objects larger than one part go multipart.
const DefaultPartSize = 16 << 20

// minPartSize is S3's smallest part (except the last).
const minPartSize = 5 << 20

// CheckTimeout bounds NewS3's check of the endpoint, credentials and bucket.
const CheckTimeout = 10 * time.Second

// S3Config configures an S3-compatible store.
type S3Config struct {
	// Endpoint is "host:port", or a URL "http://host:port" /
	// "https://host:port" whose scheme then sets UseTLS.
	Endpoint string
	Bucket   string
	// Prefix is prepended to every key ("mps" stores key "a/b" as object
	// "mps/a/b"); slashes around it are optional.
	Prefix string
	// Region may be empty: the client then asks the server.
	Region    string
	AccessKey string
	SecretKey string
	UseTLS    bool
	// PathStyle selects path-style addressing (http://host/bucket/key),
	// which most self-hosted servers need; otherwise the client picks
	// (virtual-host style where the endpoint supports it).
	PathStyle bool
	// PartSize is the multipart part size in bytes (0: DefaultPartSize;
	// at least 5 MiB).
	PartSize int64
}

// S3 stores objects in a bucket of an S3-compatible server, through
// minio-go.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ends with "/"
	partSize int64
	endpoint string
}

var _ Store = (*S3)(nil)

// NewS3 connects to the server and checks, within CheckTimeout, that it
// answers, that it accepts the credentials and that the bucket exists. The
// errors say which: "s3 endpoint unreachable: ...", "s3 credentials
// refused: ...", "s3 bucket X does not exist ...".
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	endpoint, secure, err := parseEndpoint(c.Endpoint, c.UseTLS)
	if err != nil {
		return nil, err
	}
	if c.Bucket == "" {
		return nil, errors.New("s3: no bucket configured")
	}
	partSize := c.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < minPartSize {
		return nil, fmt.Errorf("s3: part size %d is below the minimum of 5 MiB", partSize)
	}
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure: secure,
		Region: c.Region,
	}
	if c.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	client, err := minio.New(endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %s: %w", endpoint, err)
	}
	// The check gives up sooner than the default 10 retries so that an
	// unreachable endpoint gets its error well within CheckTimeout.
	checkOpts := *opts
	checkOpts.MaxRetries = 3
	checkClient, err := minio.New(endpoint, &checkOpts)
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %s: %w", endpoint, err)
	}
	s := &S3{
		client:   client,
		bucket:   c.Bucket,
		prefix:   normPrefix(c.Prefix),
		partSize: partSize,
		endpoint: endpoint,
	}
	if err := s.check(ctx, checkClient); err != nil {
		return nil, err
	}
	return s, nil
}

// parseEndpoint accepts "host:port" or an http(s) URL.
func parseEndpoint(ep string, useTLS bool) (string, bool, error) {
	if ep == "" {
		return "", false, errors.New("s3: no endpoint configured")
	}
	if !strings.Contains(ep, "://") {
		host := strings.TrimSuffix(ep, "/")
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			return "", false, fmt.Errorf("s3 endpoint %q: want host:port or an http(s) URL", ep)
		}
		return host, useTLS, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", false, fmt.Errorf("s3 endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("s3 endpoint %q: scheme must be http or https", ep)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("s3 endpoint %q: want http(s)://host:port", ep)
	}
	if u.Path != "" && u.Path != "/" {
		return "", false, fmt.Errorf("s3 endpoint %q: must not have a path", ep)
	}
	return u.Host, u.Scheme == "https", nil
}

func normPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// credentialCodes are the S3 error codes of a refused credential; any
// other 403 answer counts too.
var credentialCodes = map[string]bool{
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"InvalidToken":          true,
	"ExpiredToken":          true,
	"InvalidSecurity":       true,
	"InvalidClientTokenId":  true,
	// versitygw's answer (a 404) to an unknown access key.
	"XAdminUserNotFound": true,
}

// check lists at most one object of the bucket, which needs the endpoint to
// answer, the credentials to be accepted and the bucket to exist.
func (s *S3) check(ctx context.Context, client *minio.Client) error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	var err error
	for obj := range client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
		err = obj.Err
		break
	}
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("endpoint %s, bucket %s", s.endpoint, s.bucket)
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code != "" {
		switch {
		case er.Code == minio.NoSuchBucket:
			return fmt.Errorf("s3 bucket %s does not exist at endpoint %s", s.bucket, s.endpoint)
		case credentialCodes[er.Code] || er.StatusCode == http.StatusForbidden:
			return fmt.Errorf("s3 credentials refused (%s): %s: %s", where, er.Code, er.Error())
		default:
			return fmt.Errorf("s3 check failed (%s): %s: %w", where, er.Code, err)
		}
	}
	return fmt.Errorf("s3 endpoint unreachable (%s): %w", where, err)
}

// Name returns "s3://bucket/prefix".
func (s *S3) Name() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.bucket }

// Client returns the minio-go client, for what the Store interface does not
// cover.
func (s *S3) Client() *minio.Client { return s.client }

// object maps a key to its object name.
func (s *S3) object(op, key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", fmt.Errorf("s3 %s: %w", op, err)
	}
	return s.prefix + key, nil
}

// mapErr wraps err with the operation and key, and ErrNotFound for a
// missing object.
func (s *S3) mapErr(op, key string, err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == minio.NoSuchKey || er.Code == "NotFound") {
		return fmt.Errorf("s3 %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("s3 %s %s (%s): %w", op, key, s.Name(), err)
}

// Put uploads the object; objects larger than the part size (or of unknown
// size) go multipart. S3 makes an object visible only once complete.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	obj, err := s.object("put", key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.bucket, obj, r, size, minio.PutObjectOptions{
		PartSize:    uint64(s.partSize),
		ContentType: ContentType(key),
	})
	if err != nil {
		return s.mapErr("put", key, err)
	}
	return nil
}

// Get opens the object.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	obj, err := s.object("get", key)
	if err != nil {
		return nil, Info{}, err
	}
	o, err := s.client.GetObject(ctx, s.bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, s.mapErr("get", key, err)
	}
	oi, err := o.Stat() // sends the request
	if err != nil {
		o.Close()
		return nil, Info{}, s.mapErr("get", key, err)
	}
	return o, Info{Key: key, Size: oi.Size, Modified: oi.LastModified}, nil
}

// GetRange opens n bytes from offset off (n < 0: to the end).
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	obj, err := s.object("get range", key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("s3 get range %s: negative offset %d", key, off)
	}
	if n == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		err = opts.SetRange(off, off+n-1)
	case off > 0: // to the end
		err = opts.SetRange(off, 0)
	} // off == 0, n < 0: the whole object
	if err != nil {
		return nil, fmt.Errorf("s3 get range %s: %w", key, err)
	}
	o, err := s.client.GetObject(ctx, s.bucket, obj, opts)
	if err != nil {
		return nil, s.mapErr("get range", key, err)
	}
	if _, err := o.Stat(); err != nil {
		o.Close()
		return nil, s.mapErr("get range", key, err)
	}
	return o, nil
}

// Stat describes the object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	obj, err := s.object("stat", key)
	if err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.mapErr("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, Modified: oi.LastModified}, nil
}

// List returns the objects whose key starts with prefix, ordered by key.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3 list: %w", err)
	}
	var out []Info
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("s3 list %q (%s): %w", prefix, s.Name(), oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if key == "" || strings.HasSuffix(key, "/") { // folder markers
			continue
		}
		out = append(out, Info{Key: key, Size: oi.Size, Modified: oi.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object; a missing object is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	obj, err := s.object("delete", key)
	if err != nil {
		return err
	}
	err = s.client.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{})
	if err != nil {
		if err := s.mapErr("delete", key, err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return s.mapErr("delete", key, err)
	}
	return nil
}

// URL presigns a GET of the object valid for expiry (1 s to 7 days).
func (s *S3) URL(ctx context.Context, key string, expiry time.Duration) (string, error) {
	obj, err := s.object("url", key)
	if err != nil {
		return "", err
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, obj, expiry, nil)
	if err != nil {
		return "", fmt.Errorf("s3 url %s (%s): %w", key, s.Name(), err)
	}
	return u.String(), nil
}
