package s3store_test

import (
	"context"
	"crypto/hmac"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/storage/s3store"
	"github.com/brightrun/brightrun/internal/storage/storagetest"
)

const (
	accessKey = "AKIDBRIGHTRUNTEST"
	secretKey = "brightrun-test-secret-access-key"
	region    = "eu-west-1"
)

// gofakes3 is a real S3-protocol server (it parses the wire protocol and
// stores objects) but it does not check request signatures, presigned URL
// expiry or a signed Content-Length. sigV4Presign adds that part of S3's
// behaviour in front of it, for presigned requests only, the way S3 does
// it: it recomputes the signature over the request as received (method,
// path, query, signed headers including the actual Content-Length) and
// refuses a mismatch with 403 SignatureDoesNotMatch, and refuses a request
// past X-Amz-Date + X-Amz-Expires with 403 "Request has expired". Requests
// from the SDK itself (Authorization header) pass through unchecked.
func sigV4Presign(next http.Handler, now func() time.Time) http.Handler {
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	deny := func(w http.ResponseWriter, code, msg string) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Header.Get("Authorization") != "" && !q.Has("X-Amz-Signature") {
			next.ServeHTTP(w, r)
			return
		}
		sig := q.Get("X-Amz-Signature")
		signedAt, errDate := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
		expires, errExp := strconv.Atoi(q.Get("X-Amz-Expires"))
		if sig == "" || errDate != nil || errExp != nil || q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
			deny(w, "AccessDenied", "Query-string authentication requires the X-Amz-Signature, X-Amz-Date and X-Amz-Expires parameters")
			return
		}
		q.Del("X-Amz-Signature")
		re, _ := http.NewRequest(r.Method, "", nil)
		re.URL = &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
		re.Host = r.Host
		re.ContentLength = r.ContentLength
		if r.ContentLength < 0 {
			re.ContentLength = 0
		}
		for _, h := range strings.Split(q.Get("X-Amz-SignedHeaders"), ";") {
			if h == "host" || h == "content-length" || h == "" {
				continue
			}
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
		signed, _, err := signer.PresignHTTP(r.Context(), creds, re, "UNSIGNED-PAYLOAD", "s3", region, signedAt)
		if err != nil {
			deny(w, "AccessDenied", err.Error())
			return
		}
		su, _ := url.Parse(signed)
		if !hmac.Equal([]byte(su.Query().Get("X-Amz-Signature")), []byte(sig)) ||
			su.Query().Get("X-Amz-SignedHeaders") != q.Get("X-Amz-SignedHeaders") {
			deny(w, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return
		}
		if now().After(signedAt.Add(time.Duration(expires) * time.Second)) {
			deny(w, "AccessDenied", "Request has expired")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type fixture struct {
	store *s3store.Store
	srv   *httptest.Server
	fake  *gofakes3.GoFakeS3
}

func newFixture(t *testing.T, now func() time.Time, bucketNames map[string]string) *fixture {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	fake := gofakes3.New(s3mem.New(), gofakes3.WithTimeSkewLimit(0))
	srv := httptest.NewServer(sigV4Presign(fake.Server(), now))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	s, err := s3store.New(ctx, s3store.Options{
		Endpoint: srv.URL, Region: region, AccessKeyID: accessKey, SecretAccessKey: secretKey,
		UsePathStyle: true, BucketNames: bucketNames, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBuckets(ctx); err != nil {
		t.Fatalf("EnsureBuckets: %v", err)
	}
	if err := s.CheckBuckets(ctx); err != nil {
		t.Fatalf("CheckBuckets: %v", err)
	}
	return &fixture{store: s, srv: srv, fake: fake}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, clock *storagetest.Clock) storagetest.Harness {
		f := newFixture(t, clock.Now, nil)
		return storagetest.Harness{
			Store:           f.store,
			Client:          f.srv.Client(),
			SignatureParam:  "X-Amz-Signature",
			ExpiryParam:     "X-Amz-Expires",
			ExactUploadSize: true,
			// S3 answers a body whose length differs from the signed
			// Content-Length with 403 SignatureDoesNotMatch.
			TooLargeStatus: http.StatusForbidden,
			// gofakes3's in-memory backend holds objects in memory by
			// design, so heap growth is not meaningful here.
			MeasureUploadMemory: false,
		}
	})
}

func TestNewValidation(t *testing.T) {
	ctx := context.Background()
	if _, err := s3store.New(ctx, s3store.Options{Endpoint: "http://x"}); err == nil {
		t.Error("missing credentials: want an error")
	}
	if _, err := s3store.New(ctx, s3store.Options{AccessKeyID: "a", SecretAccessKey: "b", BucketNames: map[string]string{"nope": "x"}}); err == nil {
		t.Error("unknown logical bucket: want an error")
	}
}

func TestPresignedUploadSignsSizeAndType(t *testing.T) {
	f := newFixture(t, nil, nil)
	u, hdr, err := f.store.SignedUploadURL(context.Background(), storage.BucketDatasets, "u/d/a.json",
		storage.UploadOptions{MaxSize: 1234, ContentType: "application/json", TTL: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	if got := q.Get("X-Amz-SignedHeaders"); got != "content-length;content-type;host" {
		t.Fatalf("signed headers %q", got)
	}
	if q.Get("X-Amz-Expires") != "300" {
		t.Fatalf("expires %q", q.Get("X-Amz-Expires"))
	}
	if !strings.HasPrefix(pu.Path, "/lora-datasets/u/d/a.json") {
		t.Fatalf("not path-style: %s", u)
	}
	if hdr["Content-Length"] != "1234" || hdr["Content-Type"] != "application/json" || len(hdr) != 2 {
		t.Fatalf("headers %v", hdr)
	}
	// A different content type than the signed one is refused.
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(strings.Repeat("x", 1234)))
	req.Header.Set("Content-Type", "text/html")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong content type: status %d", resp.StatusCode)
	}
}

func TestDownloadDisposition(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := context.Background()
	if err := f.store.Put(ctx, storage.BucketModels, "u/j/adapter.tar", strings.NewReader("tar"), 3, "application/x-tar"); err != nil {
		t.Fatal(err)
	}
	d, err := f.store.SignedDownloadURL(ctx, storage.BucketModels, "u/j/adapter.tar", time.Minute, "my adapter.tar")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d, "response-content-disposition=") {
		t.Fatalf("download URL does not sign a disposition: %s", d)
	}
	resp, err := f.srv.Client().Get(d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "tar" || resp.Header.Get("Content-Disposition") != `attachment; filename="my adapter.tar"` {
		t.Fatalf("%d %q %v", resp.StatusCode, b, resp.Header)
	}
	info, err := f.store.Stat(ctx, storage.BucketModels, "u/j/adapter.tar")
	if err != nil || info.ContentType != "application/x-tar" || info.Size != 3 {
		t.Fatalf("Stat %+v %v", info, err)
	}
}

func TestBucketNameMapping(t *testing.T) {
	f := newFixture(t, nil, map[string]string{storage.BucketDatasets: "prod-datasets"})
	ctx := context.Background()
	if err := f.store.Put(ctx, storage.BucketDatasets, "a/b.json", strings.NewReader("{}"), 2, "application/json"); err != nil {
		t.Fatal(err)
	}
	if f.store.BucketName(storage.BucketDatasets) != "prod-datasets" || f.store.BucketName(storage.BucketModels) != storage.BucketModels {
		t.Fatal("BucketName mapping")
	}
	// The object is in the real bucket.
	out, err := f.store.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("prod-datasets"), Key: aws.String("a/b.json")})
	if err != nil || aws.ToInt64(out.ContentLength) != 2 {
		t.Fatalf("HeadObject in the real bucket: %v", err)
	}
	u, _, err := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "a/c.json", storage.UploadOptions{MaxSize: 2})
	if err != nil || !strings.Contains(u, "/prod-datasets/a/c.json?") {
		t.Fatalf("upload URL %s %v", u, err)
	}
}

// The verifier itself must refuse what S3 refuses, or the conformance
// suite's 403 checks would prove nothing.
func TestVerifierSanity(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := context.Background()
	f.store.Put(ctx, storage.BucketDatasets, "a/b.json", strings.NewReader("{}"), 2, "")
	d, _ := f.store.SignedDownloadURL(ctx, storage.BucketDatasets, "a/b.json", time.Minute, "")
	get := func(u string) int {
		resp, err := f.srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(d); s != 200 {
		t.Fatalf("valid URL: %d", s)
	}
	other, _ := s3store.New(ctx, s3store.Options{Endpoint: f.srv.URL, Region: region, AccessKeyID: accessKey, SecretAccessKey: "wrong", UsePathStyle: true})
	d2, _ := other.SignedDownloadURL(ctx, storage.BucketDatasets, "a/b.json", time.Minute, "")
	if s := get(d2); s != http.StatusForbidden {
		t.Fatalf("URL signed with the wrong secret: %d", s)
	}
	if s := get(strings.Replace(d, "X-Amz-Date=", "X-Amz-Date=1", 1)); s != http.StatusForbidden {
		t.Fatalf("mangled date: %d", s)
	}
}
