// Package s3store is the S3-protocol storage backend (AWS S3, Supabase
// Storage's S3 endpoint, MinIO, Cloudflare R2, ...). Clients upload and
// download directly to and from the S3 service through presigned URLs.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/brightrun/brightrun/internal/storage"
)

// Options configures the S3 backend.
type Options struct {
	// Endpoint is the S3 API base URL, e.g.
	// https://<project>.supabase.co/storage/v1/s3, http://localhost:9000
	// (MinIO), https://<account>.r2.cloudflarestorage.com. Empty means AWS.
	Endpoint string
	// Region, e.g. us-east-1 (default), the Supabase project's region, or
	// "auto" for R2.
	Region string
	// Static credentials (required).
	AccessKeyID, SecretAccessKey string
	// SessionToken is optional.
	SessionToken string
	// UsePathStyle addresses buckets as <endpoint>/<bucket>/<key> rather
	// than <bucket>.<host>; needed by Supabase and MinIO.
	UsePathStyle bool
	// BucketNames optionally maps logical buckets (storage.BucketDatasets,
	// storage.BucketModels) to real bucket names.
	BucketNames map[string]string
	// HTTPClient is optional.
	HTTPClient *http.Client
	// Now is the clock used to sign presigned URLs; default time.Now.
	Now func() time.Time
}

// Store is the S3 backend. It implements storage.Storage.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	buckets map[string]string
}

var _ storage.Storage = (*Store)(nil)

// New builds the client. It does not contact the service; see CheckBuckets
// and EnsureBuckets.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.AccessKeyID == "" || o.SecretAccessKey == "" {
		return nil, errors.New("s3 storage: AccessKeyID and SecretAccessKey are required")
	}
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	so := s3.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken),
		UsePathStyle: o.UsePathStyle,
		// Only send checksums when an operation requires one: many
		// S3-compatible services reject the newer trailing checksums, and
		// presigned URLs must not demand checksum headers from browsers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if o.Endpoint != "" {
		so.BaseEndpoint = aws.String(strings.TrimRight(o.Endpoint, "/"))
	}
	if o.HTTPClient != nil {
		so.HTTPClient = o.HTTPClient
	}
	client := s3.New(so)
	presigner := s3.HTTPPresignerV4(v4.NewSigner(func(so *v4.SignerOptions) {
		// S3 signs the path as sent, without a second round of escaping.
		so.DisableURIPathEscaping = true
	}))
	if o.Now != nil {
		presigner = clockPresigner{presigner, o.Now}
	}
	s := &Store{
		client:  client,
		presign: s3.NewPresignClient(client, func(po *s3.PresignOptions) { po.Presigner = presigner }),
		buckets: map[string]string{},
	}
	for _, b := range storage.Buckets() {
		s.buckets[b] = b
	}
	for logical, real := range o.BucketNames {
		if !storage.KnownBucket(logical) {
			return nil, fmt.Errorf("s3 storage: BucketNames: %w", storage.CheckBucket(logical))
		}
		if real != "" {
			s.buckets[logical] = real
		}
	}
	return s, nil
}

// clockPresigner signs at a configurable time (tests, clock skew fixes).
type clockPresigner struct {
	s3.HTTPPresignerV4
	now func() time.Time
}

func (c clockPresigner) PresignHTTP(ctx context.Context, cr aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return c.HTTPPresignerV4.PresignHTTP(ctx, cr, r, payloadHash, service, region, c.now(), optFns...)
}

// Client exposes the underlying S3 client.
func (s *Store) Client() *s3.Client { return s.client }

// BucketName returns the real bucket name for a logical bucket.
func (s *Store) BucketName(logical string) string { return s.buckets[logical] }

func (s *Store) object(bucket, p string) (realBucket, key string, err error) {
	key, err = storage.CheckObject(bucket, p)
	if err != nil {
		return "", "", err
	}
	return s.buckets[bucket], key, nil
}

// CheckBuckets verifies that every bucket exists and is reachable.
func (s *Store) CheckBuckets(ctx context.Context) error {
	for _, b := range storage.Buckets() {
		if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.buckets[b])}); err != nil {
			return fmt.Errorf("s3 storage: bucket %q (%s): %w", s.buckets[b], b, err)
		}
	}
	return nil
}

// EnsureBuckets creates missing buckets (development servers such as
// MinIO; on Supabase create them in the dashboard or SQL as private buckets).
func (s *Store) EnsureBuckets(ctx context.Context) error {
	for _, b := range storage.Buckets() {
		name := s.buckets[b]
		if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)}); err == nil {
			continue
		}
		in := &s3.CreateBucketInput{Bucket: aws.String(name)}
		if r := s.client.Options().Region; r != "us-east-1" && r != "auto" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
		}
		if _, err := s.client.CreateBucket(ctx, in); err != nil {
			var owned *types.BucketAlreadyOwnedByYou
			if errors.As(err, &owned) {
				continue
			}
			return fmt.Errorf("s3 storage: create bucket %q: %w", name, err)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "ObjectNotFound":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

func wrap(op, bucket, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%s %s/%s: %w", op, bucket, key, storage.ErrNotFound)
	}
	return fmt.Errorf("%s %s/%s: %w", op, bucket, key, err)
}

// SignedUploadURL implements storage.Storage. The URL is a presigned
// PutObject with Content-Length signed as o.MaxSize (and Content-Type when
// given): the client must send exactly MaxSize bytes, and S3 refuses any
// other length. With o.CreateOnly, "If-None-Match: *" is signed too, so the
// URL cannot replace an existing object (412). The returned headers are the
// ones the client must send.
func (s *Store) SignedUploadURL(ctx context.Context, bucket, p string, o storage.UploadOptions) (string, map[string]string, error) {
	rb, key, err := s.object(bucket, p)
	if err != nil {
		return "", nil, err
	}
	if o.MaxSize <= 0 {
		return "", nil, errors.New("s3 storage: UploadOptions.MaxSize must be positive")
	}
	if err := storage.CheckSize(bucket, o.MaxSize); err != nil {
		return "", nil, err
	}
	ttl, err := storage.ResolveTTL(o.TTL)
	if err != nil {
		return "", nil, err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(rb), Key: aws.String(key), ContentLength: aws.Int64(o.MaxSize)}
	if o.ContentType != "" {
		in.ContentType = aws.String(o.ContentType)
	}
	if o.CreateOnly {
		// S3 conditional write: refused with 412 once the key holds an object.
		in.IfNoneMatch = aws.String("*")
	}
	req, err := s.presign.PresignPutObject(ctx, in, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", nil, fmt.Errorf("s3 storage: presign upload %s/%s: %w", bucket, key, err)
	}
	headers := map[string]string{}
	for k, v := range req.SignedHeader {
		if strings.EqualFold(k, "Host") || len(v) == 0 {
			continue
		}
		headers[http.CanonicalHeaderKey(k)] = strings.Join(v, ",")
	}
	headers["Content-Length"] = fmt.Sprint(o.MaxSize)
	return req.URL, headers, nil
}

// SignedDownloadURL implements storage.Storage.
func (s *Store) SignedDownloadURL(ctx context.Context, bucket, p string, ttl time.Duration, downloadName string) (string, error) {
	rb, key, err := s.object(bucket, p)
	if err != nil {
		return "", err
	}
	ttl, err = storage.ResolveTTL(ttl)
	if err != nil {
		return "", err
	}
	in := &s3.GetObjectInput{Bucket: aws.String(rb), Key: aws.String(key)}
	if downloadName != "" {
		in.ResponseContentDisposition = aws.String(storage.ContentDisposition(downloadName))
	}
	req, err := s.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("s3 storage: presign download %s/%s: %w", bucket, key, err)
	}
	return req.URL, nil
}

// Open implements storage.Storage (a streaming GetObject).
func (s *Store) Open(ctx context.Context, bucket, p string) (io.ReadCloser, error) {
	rb, key, err := s.object(bucket, p)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(rb), Key: aws.String(key)})
	if err != nil {
		return nil, wrap("open", bucket, key, err)
	}
	return out.Body, nil
}

// Stat implements storage.Storage (HeadObject).
func (s *Store) Stat(ctx context.Context, bucket, p string) (storage.ObjectInfo, error) {
	rb, key, err := s.object(bucket, p)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(rb), Key: aws.String(key)})
	if err != nil {
		return storage.ObjectInfo{}, wrap("stat", bucket, key, err)
	}
	return storage.ObjectInfo{
		Size:        aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
		ETag:        aws.ToString(out.ETag),
	}, nil
}

// Put implements storage.Storage with a single streaming PutObject (up to
// 5 GiB, S3's single-request limit, which is also the largest bucket
// limit). The payload is sent unsigned (UNSIGNED-PAYLOAD) so the body is
// read once and never buffered; use an https endpoint in production. As the
// body cannot be rewound, the SDK does not retry a failed Put; callers may.
func (s *Store) Put(ctx context.Context, bucket, p string, r io.Reader, size int64, contentType string) error {
	rb, key, err := s.object(bucket, p)
	if err != nil {
		return err
	}
	if err := storage.CheckSize(bucket, size); err != nil {
		return err
	}
	cr := &countingReader{r: io.LimitReader(r, size+1), limit: size}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(rb),
		Key:           aws.String(key),
		Body:          cr,
		ContentLength: aws.Int64(size),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	_, err = s.client.PutObject(ctx, in, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if cr.over {
		// The transport sent exactly size bytes; the object must not stand.
		_ = s.Delete(context.WithoutCancel(ctx), bucket, key)
		return fmt.Errorf("put %s/%s: %w: body longer than the declared %d bytes", bucket, key, storage.ErrTooLarge, size)
	}
	if err != nil && cr.n < size && ctx.Err() == nil {
		return fmt.Errorf("put %s/%s: body shorter than its declared size (%d of %d bytes): %w", bucket, key, cr.n, size, err)
	}
	if err != nil {
		return wrap("put", bucket, key, err)
	}
	return nil
}

// countingReader notices a body longer than its declared size.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	over  bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		c.over = true
	}
	return n, err
}

// Delete implements storage.Storage (S3 deletes are idempotent).
func (s *Store) Delete(ctx context.Context, bucket, p string) error {
	rb, key, err := s.object(bucket, p)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(rb), Key: aws.String(key)}); err != nil && !isNotFound(err) {
		return wrap("delete", bucket, key, err)
	}
	return nil
}
