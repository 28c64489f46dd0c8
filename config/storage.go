package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Storage says where media is kept besides the local disk: recordings and
// job outputs are also uploaded to S3-compatible object storage when
// storage.type is "s3".
type Storage struct {
	// Type is "local" (the default: everything stays on this machine's
	// disk) or "s3".
	Type string    `koanf:"type"`
	S3   StorageS3 `koanf:"s3"`
	// Spool is the local queue of files waiting for upload: it buffers
	// while S3 is unreachable and drains when it returns.
	Spool StorageSpool `koanf:"spool"`
}

// StorageS3 is an S3-compatible bucket.
type StorageS3 struct {
	// Endpoint is host[:port], such as "s3.eu-west-1.amazonaws.com" or
	// "127.0.0.1:7070".
	Endpoint string `koanf:"endpoint"`
	Bucket   string `koanf:"bucket"`
	// Prefix is put before every key, such as "mps/".
	Prefix string `koanf:"prefix"`
	Region string `koanf:"region"`
	// AccessKey and SecretKey default to the AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY environment variables.
	AccessKey string `koanf:"access_key"`
	SecretKey string `koanf:"secret_key"`
	// TLS makes the connection HTTPS.
	TLS bool `koanf:"tls"`
	// PathStyle addresses the bucket in the path (most self-hosted
	// servers) rather than in the host name.
	PathStyle bool `koanf:"path_style"`
	// PartSize is the multipart upload part size in bytes.
	PartSize int64 `koanf:"part_size"`
	// Presign, when more than 0, answers downloads of recordings and job
	// outputs with a redirect to a presigned URL valid this long.
	Presign time.Duration `koanf:"presign"`
}

// StorageSpool is the upload queue.
type StorageSpool struct {
	Dir string `koanf:"dir"`
	// MaxSize bounds the bytes waiting for upload; a recording that would
	// pass it fails with an event rather than lose data silently.
	MaxSize int64 `koanf:"max_size"`
}

// Storage types.
const (
	StorageTypeLocal = "local"
	StorageTypeS3    = "s3"
)

// DefaultStorage is the storage section of Default: local disk only.
func DefaultStorage() Storage {
	return Storage{
		Type:  StorageTypeLocal,
		S3:    StorageS3{PathStyle: true, PartSize: 16 << 20},
		Spool: StorageSpool{Dir: "data/spool", MaxSize: 10 << 30},
	}
}

// S3Credentials returns the configured keys, else those of the AWS
// environment variables.
func (s StorageS3) S3Credentials() (access, secret string) {
	access, secret = s.AccessKey, s.SecretKey
	if access == "" {
		access = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if secret == "" {
		secret = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	return access, secret
}

func (c *Config) validateStorage() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	s := c.Storage
	switch s.Type {
	case StorageTypeLocal:
	case StorageTypeS3:
		if s.S3.Endpoint == "" || strings.ContainsAny(s.S3.Endpoint, "/ ") {
			add("storage.s3.endpoint %q: want host or host:port, without a scheme", s.S3.Endpoint)
		}
		if s.S3.Bucket == "" {
			add("storage.s3.bucket: must be set when storage.type is s3")
		}
		if strings.HasPrefix(s.S3.Prefix, "/") || strings.Contains(s.S3.Prefix, "..") {
			add("storage.s3.prefix %q: must be relative, without ..", s.S3.Prefix)
		}
		if s.S3.PartSize < 5<<20 {
			add("storage.s3.part_size %d: must be at least 5 MiB (5242880), the S3 minimum", s.S3.PartSize)
		}
		if s.S3.Presign < 0 {
			add("storage.s3.presign %s: must be 0 (off) or more", s.S3.Presign)
		}
		if s.Spool.Dir == "" {
			add("storage.spool.dir: must be set when storage.type is s3")
		}
		if s.Spool.MaxSize <= 0 {
			add("storage.spool.max_size %d: must be more than 0 bytes", s.Spool.MaxSize)
		}
	default:
		add("storage.type %q: want local or s3", s.Type)
	}
	return errs
}
