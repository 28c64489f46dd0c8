package vod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Inputs turns a job's input into a local file.
type Inputs struct {
	// MediaRoots are the folders a path input may name a file in.
	MediaRoots []string
	// Recording returns the file of a recording id.
	Recording func(id string) (string, error)
	// AllowedHosts lists the hosts a URL input may name ("*" allows any
	// public host); empty refuses every URL.
	AllowedHosts []string
	// AllowPrivate lets URLs reach loopback and private addresses.
	AllowPrivate bool
	// MaxDownload bounds a downloaded input (default 10 GiB).
	MaxDownload int64
	Client      *http.Client
	// S3 opens the object of an s3://BUCKET/KEY input on the configured
	// S3 endpoint; nil refuses them. A missing object is ErrBadInput.
	S3 func(ctx context.Context, bucket, key string) (io.ReadCloser, error)
	// S3List lists the objects below a prefix of a bucket, for s3
	// workflows; nil refuses them.
	S3List func(ctx context.Context, bucket, prefix string) ([]S3Object, error)
}

// S3Object is an object an s3 workflow sees.
type S3Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Resolve returns the local file of in, downloading a URL into workDir.
func (in *Inputs) Resolve(ctx context.Context, ji JobInput, workDir string) (string, error) {
	switch {
	case ji.Path != "":
		return in.localPath(ji.Path)
	case ji.Recording != "":
		if in.Recording == nil {
			return "", fmt.Errorf("%w: input.recording: this server has no recordings", ErrBadInput)
		}
		p, err := in.Recording(ji.Recording)
		if err != nil {
			return "", fmt.Errorf("%w: input.recording %q: %v", ErrBadInput, ji.Recording, err)
		}
		return p, nil
	case strings.HasPrefix(ji.URL, "s3://"):
		return in.downloadS3(ctx, ji.URL, workDir)
	case ji.URL != "":
		return in.download(ctx, ji.URL, workDir)
	}
	return "", fmt.Errorf("%w: no input", ErrBadInput)
}

// localPath checks that p names a regular file inside a media root, after
// symbolic links are followed.
func (in *Inputs) localPath(p string) (string, error) {
	if len(in.MediaRoots) == 0 {
		return "", fmt.Errorf("%w: input.path: no media roots are configured", ErrBadInput)
	}
	for _, root := range in.MediaRoots {
		rootAbs, err := filepath.Abs(root)
		if err != nil {
			continue
		}
		candidate := p
		if !filepath.IsAbs(p) {
			candidate = filepath.Join(rootAbs, p)
		}
		real, err := filepath.EvalSymlinks(candidate)
		if err != nil {
			continue
		}
		realRoot, err := filepath.EvalSymlinks(rootAbs)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(rel) {
			continue
		}
		fi, err := os.Stat(real)
		if err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%w: input.path %q: not a regular file", ErrBadInput, p)
		}
		return real, nil
	}
	return "", fmt.Errorf("%w: input.path %q: no such file inside the media roots", ErrBadInput, p)
}

// checkURL refuses URLs the configuration does not allow.
func (in *Inputs) checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: input.url %q: want an http or https URL", ErrBadInput, raw)
	}
	host := u.Hostname()
	if !slices.Contains(in.AllowedHosts, "*") && !slices.Contains(in.AllowedHosts, host) {
		return nil, fmt.Errorf("%w: input.url: host %q is not in the allowed hosts", ErrBadInput, host)
	}
	return u, nil
}

// privateDialer refuses connections to loopback, private and link-local
// addresses, checked on the address actually dialled (no DNS rebinding).
func privateDialer(allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if !allowPrivate && (ip.IP.IsLoopback() || ip.IP.IsPrivate() || ip.IP.IsLinkLocalUnicast() || ip.IP.IsUnspecified() || ip.IP.IsLinkLocalMulticast()) {
				return nil, fmt.Errorf("%w: address %s is private or loopback", errRefusedAddress, ip.IP)
			}
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ips[0].IP.String(), port))
	}
}

var errRefusedAddress = errors.New("refused")

func (in *Inputs) download(ctx context.Context, raw, workDir string) (string, error) {
	u, err := in.checkURL(raw)
	if err != nil {
		return "", err
	}
	client := in.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DialContext: privateDialer(in.AllowPrivate)}, Timeout: time.Hour}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errRefusedAddress) {
			return "", fmt.Errorf("%w: input.url: %v", ErrBadInput, err)
		}
		return "", fmt.Errorf("download input: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return "", fmt.Errorf("%w: input.url: the server answered %s", ErrBadInput, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download input: %s", resp.Status)
	}
	return in.save(resp.Body, u.Path, workDir, "input.url")
}

// downloadS3 copies the object of an s3://bucket/key input into workDir.
func (in *Inputs) downloadS3(ctx context.Context, raw, workDir string) (string, error) {
	if in.S3 == nil {
		return "", fmt.Errorf("%w: input.url %q: this server has no S3 storage (storage.type s3)", ErrBadInput, raw)
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(raw, "s3://"), "/")
	if !ok || bucket == "" || key == "" || strings.Contains(key, "..") {
		return "", fmt.Errorf("%w: input.url %q: want s3://BUCKET/KEY", ErrBadInput, raw)
	}
	r, err := in.S3(ctx, bucket, key)
	if err != nil {
		return "", fmt.Errorf("input.url %q: %w", raw, err)
	}
	defer r.Close()
	return in.save(r, key, workDir, "input.url "+raw)
}

// save writes an input's bytes into workDir, bounded by MaxDownload.
func (in *Inputs) save(r io.Reader, name, workDir, what string) (string, error) {
	limit := in.MaxDownload
	if limit <= 0 {
		limit = 10 << 30
	}
	path := filepath.Join(workDir, "input"+safeExt(name))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download input: %w", err)
	}
	if n > limit {
		return "", fmt.Errorf("%w: %s: larger than %d bytes", ErrBadInput, what, limit)
	}
	return path, nil
}

func safeExt(p string) string {
	ext := strings.ToLower(filepath.Ext(p))
	if len(ext) > 6 || strings.ContainsAny(ext, "/\\") {
		return ""
	}
	return ext
}
