// Package storage defines BrightRun's object storage abstraction: two
// buckets of opaque objects addressed by slash-separated paths, written
// either by the server (Put) or directly by a browser through a short-lived
// signed upload URL, and read back through signed download URLs or by
// streaming (Open).
//
// Backends live in sub-packages: storage/local (files under the data dir,
// URLs served by the BrightRun binary itself) and storage/s3store (any
// S3-protocol service: AWS, Supabase Storage, MinIO, R2).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
)

// Known buckets (the spec's Supabase buckets).
const (
	BucketDatasets = "lora-datasets"
	BucketModels   = "lora-models"
)

// Size limits. "500 MB" and "5 GB" in the spec are read as binary units, as
// in the spec's own route code (MAX_FILE_SIZE = 500 * 1024 * 1024) and as
// Supabase interprets a bucket's "500MB" file size limit. 5 GiB is also the
// largest object a single S3 PUT (and so a single presigned PUT) accepts.
const (
	MaxDatasetSize int64 = 500 << 20 // 524,288,000 bytes
	MaxModelSize   int64 = 5 << 30   // 5,368,709,120 bytes
)

// DefaultURLTTL is used when a caller passes a zero TTL.
const DefaultURLTTL = time.Hour

// MaxURLTTL bounds how long a signed URL may live (S3 SigV4's own limit).
const MaxURLTTL = 7 * 24 * time.Hour

// Sentinel errors. Backends wrap them with context; test with errors.Is.
var (
	ErrNotFound      = errors.New("storage: object not found")
	ErrTooLarge      = errors.New("storage: object too large")
	ErrInvalidPath   = errors.New("storage: invalid object path")
	ErrBadSignature  = errors.New("storage: invalid signature")
	ErrExpired       = errors.New("storage: signed URL expired")
	ErrUnknownBucket = errors.New("storage: unknown bucket")
	// ErrUploadClosed is what an UploadGuard returns when the object may no
	// longer be written through its signed upload URL.
	ErrUploadClosed = errors.New("storage: this upload is closed")
)

var bucketLimits = map[string]int64{
	BucketDatasets: MaxDatasetSize,
	BucketModels:   MaxModelSize,
}

// Buckets returns the known logical bucket names, sorted.
func Buckets() []string {
	out := make([]string, 0, len(bucketLimits))
	for b := range bucketLimits {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// KnownBucket reports whether b is one of the known buckets.
func KnownBucket(b string) bool {
	_, ok := bucketLimits[b]
	return ok
}

// MaxObjectSize returns the largest object the bucket accepts, or 0 for an
// unknown bucket.
func MaxObjectSize(bucket string) int64 { return bucketLimits[bucket] }

// CheckBucket returns a wrapped ErrUnknownBucket for an unknown bucket.
func CheckBucket(bucket string) error {
	if !KnownBucket(bucket) {
		return fmt.Errorf("%w: %q", ErrUnknownBucket, bucket)
	}
	return nil
}

// CheckObject validates bucket and path together and returns the cleaned path.
func CheckObject(bucket, path string) (string, error) {
	if err := CheckBucket(bucket); err != nil {
		return "", err
	}
	return CleanPath(path)
}

// CheckSize validates a declared object size for bucket: it must not be
// negative nor larger than MaxObjectSize(bucket).
func CheckSize(bucket string, size int64) error {
	if size < 0 {
		return fmt.Errorf("storage: negative size %d", size)
	}
	if max := MaxObjectSize(bucket); size > max {
		return fmt.Errorf("%w: %d bytes exceeds the %s limit of %d bytes", ErrTooLarge, size, bucket, max)
	}
	return nil
}

// ResolveTTL applies DefaultURLTTL to zero and rejects negative or too long TTLs.
func ResolveTTL(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return DefaultURLTTL, nil
	case ttl < 0:
		return 0, fmt.Errorf("storage: negative URL TTL %s", ttl)
	case ttl > MaxURLTTL:
		return 0, fmt.Errorf("storage: URL TTL %s exceeds the maximum of %s", ttl, MaxURLTTL)
	}
	return ttl, nil
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Size        int64
	ContentType string
	ModTime     time.Time
	ETag        string
}

// UploadOptions configures a signed upload URL.
type UploadOptions struct {
	// MaxSize is the declared size of the upload. A body larger than this is
	// refused. Required (> 0); at most MaxObjectSize(bucket). The S3 backend
	// signs it as the exact Content-Length, so the client must send exactly
	// MaxSize bytes there; the local backend accepts any size up to MaxSize.
	MaxSize int64
	// ContentType, when set, is returned in the headers the client must send
	// (and signed by the S3 backend).
	ContentType string
	// TTL is how long the URL stays valid; 0 means DefaultURLTTL.
	TTL time.Duration
	// CreateOnly makes the URL write-once: a PUT is refused (412) when the
	// object already exists, so a confirmed object can never be replaced
	// through it. S3 signs "If-None-Match: *" (returned in the headers); the
	// local backend checks atomically when it moves the upload into place.
	// Put (server-side writes) is not affected.
	CreateOnly bool
}

// UploadGuard is asked whether a signed upload to bucket/path may still
// write the object: a nil error allows it, an error wrapping
// ErrUploadClosed refuses it (403), any other error fails it (503). It lets
// the domain that issued the URL revoke it (dataset confirmed or deleted).
type UploadGuard func(ctx context.Context, bucket, path string) error

// UploadGuarder is implemented by backends that serve their signed upload
// URLs themselves (local) and so can consult an UploadGuard before
// accepting a body and again before the object is put in place. S3 cannot:
// there, write-once URLs (CreateOnly) and tombstones do the job.
type UploadGuarder interface {
	GuardUploads(bucket string, g UploadGuard)
}

// Storage is implemented by every backend. Methods are safe for concurrent use.
type Storage interface {
	// SignedUploadURL returns a URL the client PUTs the object body to, and
	// the headers it must send with it (for example Content-Type, and
	// Content-Length for S3; browsers set Content-Length themselves).
	SignedUploadURL(ctx context.Context, bucket, path string, o UploadOptions) (url string, headers map[string]string, err error)
	// SignedDownloadURL returns a GET URL valid for ttl (0: DefaultURLTTL).
	// A non-empty downloadName is served as an attachment file name.
	SignedDownloadURL(ctx context.Context, bucket, path string, ttl time.Duration, downloadName string) (string, error)
	// Open streams an object. The caller must close the reader.
	Open(ctx context.Context, bucket, path string) (io.ReadCloser, error)
	// Stat returns an object's metadata, or ErrNotFound.
	Stat(ctx context.Context, bucket, path string) (ObjectInfo, error)
	// Put writes an object from r, streaming. size is the exact body size
	// (required, >= 0); a reader that yields more is refused with ErrTooLarge,
	// fewer with an error, and no partial object is left behind.
	Put(ctx context.Context, bucket, path string, r io.Reader, size int64, contentType string) error
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, bucket, path string) error
}
