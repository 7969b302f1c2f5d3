// Package storagetest is the conformance suite every storage backend runs:
// real signed URLs exercised with a real HTTP client against a real server.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
)

// Clock is a settable clock shared by a backend (signing) and its server
// (checking expiry).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to the current time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Harness describes a backend under test.
type Harness struct {
	Store storage.Storage
	// Client performs requests on signed URLs; default http.DefaultClient.
	Client *http.Client
	// SignatureParam and ExpiryParam name the signed URL's query
	// parameters holding the signature and the expiry/lifetime.
	SignatureParam, ExpiryParam string
	// ExactUploadSize: the upload URL accepts only a body of exactly the
	// declared size (S3: signed Content-Length). Otherwise any size up to
	// the declared one is accepted (local).
	ExactUploadSize bool
	// TooLargeStatus is the status for a body larger than declared (local:
	// 413; S3 refuses the mismatching signed Content-Length with 403).
	TooLargeStatus int
	// MeasureUploadMemory: the upload server runs in this process, so the
	// 50 MB streaming upload's heap growth can be measured.
	MeasureUploadMemory bool
}

// Run runs the conformance suite. newHarness is called once per subtest
// with a fresh clock that the backend must use for signing and for
// checking expiry.
func Run(t *testing.T, newHarness func(t *testing.T, clock *Clock) Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"UploadDownloadRoundTrip", testRoundTrip},
		{"UploadHeaders", testUploadHeaders},
		{"Overwrite", testOverwrite},
		{"CreateOnlyUpload", testCreateOnly},
		{"PutOpenStatDelete", testPutOpenStatDelete},
		{"PutSizeMismatch", testPutSizeMismatch},
		{"PutEmpty", testPutEmpty},
		{"NotFound", testNotFound},
		{"ExpiredURL", testExpired},
		{"TamperedURL", testTampered},
		{"WrongMethod", testWrongMethod},
		{"OversizedUpload", testOversized},
		{"ChunkedOversizedUpload", testChunkedOversized},
		{"SizeLimits", testSizeLimits},
		{"InvalidPaths", testInvalidPaths},
		{"UnknownBucket", testUnknownBucket},
		{"TTLValidation", testTTL},
		{"LargeStreamingUpload", testLargeUpload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock()
			h := newHarness(t, clock)
			if h.Client == nil {
				h.Client = http.DefaultClient
			}
			if h.TooLargeStatus == 0 {
				h.TooLargeStatus = http.StatusRequestEntityTooLarge
			}
			tc.fn(t, &env{Harness: h, clock: clock, ctx: context.Background()})
		})
	}
}

type env struct {
	Harness
	clock *Clock
	ctx   context.Context
}

const ds = storage.BucketDatasets

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// do performs a request with a body of known length (or -1: chunked).
func (e *env) do(t *testing.T, method, u string, headers map[string]string, body io.Reader, length int64) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, u, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Content-Length") {
			continue // the transport sets it from req.ContentLength
		}
		req.Header.Set(k, v)
	}
	if body != nil {
		req.ContentLength = length
		if length < 0 {
			req.ContentLength = 0
			req.TransferEncoding = []string{"chunked"}
		}
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		// A server may refuse and close the connection before reading the
		// whole body; the client then reports a write error.
		return 0, []byte(err.Error()), nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, data, resp.Header
}

// upload PUTs data to a fresh signed URL and requires success.
func (e *env) upload(t *testing.T, bucket, path string, data []byte, contentType string) {
	t.Helper()
	u, hdr, err := e.Store.SignedUploadURL(e.ctx, bucket, path, storage.UploadOptions{MaxSize: int64(len(data)), ContentType: contentType, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatalf("SignedUploadURL: %v", err)
	}
	status, body, _ := e.do(t, http.MethodPut, u, hdr, bytes.NewReader(data), int64(len(data)))
	if status != http.StatusOK {
		t.Fatalf("PUT signed URL: status %d: %s", status, body)
	}
}

func (e *env) download(t *testing.T, bucket, path, name string) (int, []byte, http.Header) {
	t.Helper()
	u, err := e.Store.SignedDownloadURL(e.ctx, bucket, path, 10*time.Minute, name)
	if err != nil {
		t.Fatalf("SignedDownloadURL: %v", err)
	}
	return e.do(t, http.MethodGet, u, nil, nil, 0)
}

func (e *env) requireMissing(t *testing.T, bucket, path string) {
	t.Helper()
	if _, err := e.Store.Stat(e.ctx, bucket, path); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(%s): want ErrNotFound, got %v", path, err)
	}
}

func testRoundTrip(t *testing.T, e *env) {
	data := randomBytes(1<<20+3, 1)
	path := "user-1/ds-1/train data.jsonl"
	e.upload(t, ds, path, data, "application/x-jsonlines")

	info, err := e.Store.Stat(e.ctx, ds, path)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("Stat size %d, want %d", info.Size, len(data))
	}
	if info.ModTime.IsZero() || info.ETag == "" || info.ContentType == "" {
		t.Fatalf("Stat: incomplete info %+v", info)
	}

	status, got, hdr := e.download(t, ds, path, "résumé data.jsonl")
	if status != http.StatusOK {
		t.Fatalf("GET signed URL: status %d: %s", status, got)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes differ from the %d uploaded", len(got), len(data))
	}
	cd := hdr.Get("Content-Disposition")
	if !strings.HasPrefix(cd, "attachment") || !strings.Contains(cd, "r%C3%A9sum%C3%A9") {
		t.Fatalf("Content-Disposition = %q, want an attachment named résumé data.jsonl", cd)
	}

	rc, err := e.Store.Open(e.ctx, ds, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, rc, make([]byte, 4096)); err != nil {
		t.Fatalf("read Open: %v", err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("Open content differs from the upload")
	}
}

func testUploadHeaders(t *testing.T, e *env) {
	u, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/a.json", storage.UploadOptions{MaxSize: 10, ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http") {
		t.Fatalf("upload URL %q is not absolute", u)
	}
	if hdr["Content-Type"] != "application/json" {
		t.Fatalf("headers %v: want Content-Type application/json", hdr)
	}
	if e.ExactUploadSize && hdr["Content-Length"] != "10" {
		t.Fatalf("headers %v: want Content-Length 10", hdr)
	}
	if _, _, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/a.json", storage.UploadOptions{}); err == nil {
		t.Fatal("SignedUploadURL without MaxSize: want an error")
	}
}

func testOverwrite(t *testing.T, e *env) {
	e.upload(t, ds, "u/d/f.json", []byte(`{"v":1}`), "application/json")
	e.upload(t, ds, "u/d/f.json", []byte(`{"v":22}`), "application/json")
	status, got, _ := e.download(t, ds, "u/d/f.json", "")
	if status != http.StatusOK || string(got) != `{"v":22}` {
		t.Fatalf("after overwrite: %d %q", status, got)
	}
}

// testCreateOnly: a write-once upload URL works once; a second PUT on the
// same URL (or a fresh one) is refused with 412 and the stored bytes stay
// identical; a server-side Put (a tombstone) closes a URL that was never
// used; after Delete the key is writable again.
func testCreateOnly(t *testing.T, e *env) {
	const path = "u/d/once.json"
	first, second := []byte(`{"v":1}`), []byte(`{"v":2}`)
	o := storage.UploadOptions{MaxSize: int64(len(first)), ContentType: "application/json", TTL: 10 * time.Minute, CreateOnly: true}
	u, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, path, o)
	if err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(t, http.MethodPut, u, hdr, bytes.NewReader(first), int64(len(first))); status != http.StatusOK {
		t.Fatalf("first PUT: %d %s", status, body)
	}
	u2, hdr2, err := e.Store.SignedUploadURL(e.ctx, ds, path, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, url := range []string{u, u2} {
		h := []map[string]string{hdr, hdr2}[i]
		if status, body, _ := e.do(t, http.MethodPut, url, h, bytes.NewReader(second), int64(len(second))); status != http.StatusPreconditionFailed {
			t.Fatalf("PUT %d on an existing object: status %d (%s), want 412", i+2, status, body)
		}
	}
	if status, got, _ := e.download(t, ds, path, ""); status != http.StatusOK || !bytes.Equal(got, first) {
		t.Fatalf("after refused PUTs: %d %q, want the first upload unchanged", status, got)
	}

	// An unused URL is closed by a tombstone written server-side.
	const path2 = "u/d/tomb.json"
	u3, hdr3, err := e.Store.SignedUploadURL(e.ctx, ds, path2, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.Put(e.ctx, ds, path2, bytes.NewReader(nil), 0, ""); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(t, http.MethodPut, u3, hdr3, bytes.NewReader(second), int64(len(second))); status != http.StatusPreconditionFailed {
		t.Fatalf("PUT over a tombstone: status %d (%s), want 412", status, body)
	}
	if info, err := e.Store.Stat(e.ctx, ds, path2); err != nil || info.Size != 0 {
		t.Fatalf("tombstone after a refused PUT: %+v %v", info, err)
	}

	// Deleting frees the key for a new write-once upload.
	if err := e.Store.Delete(e.ctx, ds, path); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(t, http.MethodPut, u, hdr, bytes.NewReader(second), int64(len(second))); status != http.StatusOK {
		t.Fatalf("PUT after Delete: %d %s", status, body)
	}
}

// onlyReader hides any Seek/WriterTo/Len so backends must stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testPutOpenStatDelete(t *testing.T, e *env) {
	data := randomBytes(300_001, 2)
	const path = "u/job-1/adapter_model.safetensors"
	if err := e.Store.Put(e.ctx, storage.BucketModels, path, onlyReader{bytes.NewReader(data)}, int64(len(data)), "application/octet-stream"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	info, err := e.Store.Stat(e.ctx, storage.BucketModels, path)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Stat: %+v, %v", info, err)
	}
	rc, err := e.Store.Open(e.ctx, storage.BucketModels, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open: %d bytes, %v", len(got), err)
	}
	// The same path in the other bucket is a different object.
	e.requireMissing(t, ds, path)

	for i := range 2 { // idempotent
		if err := e.Store.Delete(e.ctx, storage.BucketModels, path); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	e.requireMissing(t, storage.BucketModels, path)
	if err := e.Store.Delete(e.ctx, ds, "never/existed.json"); err != nil {
		t.Fatalf("Delete of a missing object: %v", err)
	}
}

func testPutSizeMismatch(t *testing.T, e *env) {
	// Longer than declared: refused, nothing stored.
	err := e.Store.Put(e.ctx, ds, "u/d/long.json", onlyReader{bytes.NewReader(make([]byte, 200))}, 100, "")
	if err == nil {
		t.Fatal("Put of 200 bytes declared as 100: want an error")
	}
	e.requireMissing(t, ds, "u/d/long.json")
	// Shorter than declared: refused, nothing stored.
	err = e.Store.Put(e.ctx, ds, "u/d/short.json", onlyReader{bytes.NewReader(make([]byte, 50))}, 100, "")
	if err == nil {
		t.Fatal("Put of 50 bytes declared as 100: want an error")
	}
	e.requireMissing(t, ds, "u/d/short.json")
}

func testPutEmpty(t *testing.T, e *env) {
	if err := e.Store.Put(e.ctx, ds, "u/d/empty.jsonl", strings.NewReader(""), 0, ""); err != nil {
		t.Fatalf("Put empty: %v", err)
	}
	info, err := e.Store.Stat(e.ctx, ds, "u/d/empty.jsonl")
	if err != nil || info.Size != 0 {
		t.Fatalf("Stat empty: %+v %v", info, err)
	}
}

func testNotFound(t *testing.T, e *env) {
	e.requireMissing(t, ds, "nobody/nothing.json")
	if _, err := e.Store.Open(e.ctx, ds, "nobody/nothing.json"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open missing: want ErrNotFound, got %v", err)
	}
	status, body, _ := e.download(t, ds, "nobody/nothing.json", "")
	if status != http.StatusNotFound {
		t.Fatalf("GET missing: status %d (%s), want 404", status, body)
	}
	// A "directory" (prefix of an object) is not an object.
	e.upload(t, ds, "a/b/c.json", []byte("{}"), "")
	e.requireMissing(t, ds, "a/b")
}

func testExpired(t *testing.T, e *env) {
	data := []byte(`{"hello":"world"}`)
	e.upload(t, ds, "u/d/x.json", data, "application/json")

	up, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/y.json", storage.UploadOptions{MaxSize: int64(len(data)), TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	down, err := e.Store.SignedDownloadURL(e.ctx, ds, "u/d/x.json", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	// Still valid just before expiry.
	e.clock.Advance(50 * time.Second)
	if status, body, _ := e.do(t, http.MethodGet, down, nil, nil, 0); status != http.StatusOK {
		t.Fatalf("GET before expiry: %d %s", status, body)
	}
	e.clock.Advance(2 * time.Minute)
	status, body, _ := e.do(t, http.MethodPut, up, hdr, bytes.NewReader(data), int64(len(data)))
	if status != http.StatusForbidden {
		t.Fatalf("PUT after expiry: status %d (%s), want 403", status, body)
	}
	if !strings.Contains(strings.ToLower(string(body)), "expired") {
		t.Fatalf("PUT after expiry: body %q should say the link expired", body)
	}
	e.requireMissing(t, ds, "u/d/y.json")
	status, body, _ = e.do(t, http.MethodGet, down, nil, nil, 0)
	if status != http.StatusForbidden || !strings.Contains(strings.ToLower(string(body)), "expired") {
		t.Fatalf("GET after expiry: status %d (%s), want 403 saying expired", status, body)
	}
}

// tamper returns u with query parameter name changed by f.
func tamper(t *testing.T, u, name string, f func(string) string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	if _, ok := q[name]; !ok {
		t.Fatalf("URL %s has no %q parameter", u, name)
	}
	q.Set(name, f(q.Get(name)))
	pu.RawQuery = q.Encode()
	return pu.String()
}

func flipLast(s string) string {
	if s == "" {
		return "x"
	}
	c := s[len(s)-1]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	return s[:len(s)-1] + string(r)
}

func testTampered(t *testing.T, e *env) {
	secret := []byte("secret data")
	e.upload(t, ds, "alice/d/secret.json", secret, "")
	e.upload(t, ds, "bob/d/mine.json", []byte("bob's"), "")

	down, err := e.Store.SignedDownloadURL(e.ctx, ds, "bob/d/mine.json", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	longer := func(s string) string {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return s + "0"
		}
		return strconv.FormatInt(n+3600, 10)
	}
	cases := map[string]string{
		"signature":            tamper(t, down, e.SignatureParam, flipLast),
		"expiry":               tamper(t, down, e.ExpiryParam, longer),
		"path (other user)":    strings.Replace(down, "bob/d/mine.json", "alice/d/secret.json", 1),
		"path (other bucket)":  strings.Replace(down, ds, storage.BucketModels, 1),
		"signature removed":    tamper(t, down, e.SignatureParam, func(string) string { return "" }),
		"unsigned param added": addParam(t, down),
		"signature of another": tamper(t, down, e.SignatureParam, func(string) string { return strings.Repeat("0", 64) }),
	}
	for name, u := range cases {
		if u == down {
			t.Fatalf("%s: tampering did not change the URL", name)
		}
		status, body, _ := e.do(t, http.MethodGet, u, nil, nil, 0)
		if name == "unsigned param added" {
			// Unsigned extra parameters must not change what is served.
			if status == http.StatusOK && !bytes.Equal(body, []byte("bob's")) {
				t.Fatalf("%s: served %q", name, body)
			}
			continue
		}
		if status != http.StatusForbidden {
			t.Fatalf("%s: status %d (%s), want 403", name, status, body)
		}
		if bytes.Contains(body, secret) {
			t.Fatalf("%s: leaked the other user's object", name)
		}
	}

	// Upload URLs: a tampered one stores nothing.
	up, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, "bob/d/new.json", storage.UploadOptions{MaxSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{
		"signature": tamper(t, up, e.SignatureParam, flipLast),
		"path":      strings.Replace(up, "bob/d/new.json", "alice/d/secret.json", 1),
	} {
		status, body, _ := e.do(t, http.MethodPut, u, hdr, strings.NewReader("hello"), 5)
		if status != http.StatusForbidden {
			t.Fatalf("upload, tampered %s: status %d (%s), want 403", name, status, body)
		}
	}
	e.requireMissing(t, ds, "bob/d/new.json")
	_, got, _ := e.download(t, ds, "alice/d/secret.json", "")
	if !bytes.Equal(got, secret) {
		t.Fatalf("alice's object was changed: %q", got)
	}
}

func addParam(t *testing.T, u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.RawQuery += "&extra=1"
	return pu.String()
}

func testWrongMethod(t *testing.T, e *env) {
	e.upload(t, ds, "u/d/m.json", []byte("original"), "")
	down, err := e.Store.SignedDownloadURL(e.ctx, ds, "u/d/m.json", time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(t, http.MethodPut, down, nil, strings.NewReader("replaced"), 8); status != http.StatusForbidden {
		t.Fatalf("PUT on a download URL: status %d (%s), want 403", status, body)
	}
	if status, body, _ := e.do(t, http.MethodDelete, down, nil, nil, 0); status != http.StatusForbidden {
		t.Fatalf("DELETE on a download URL: status %d (%s), want 403", status, body)
	}
	up, _, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/m.json", storage.UploadOptions{MaxSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if status, body, _ := e.do(t, http.MethodGet, up, nil, nil, 0); status != http.StatusForbidden || bytes.Contains(body, []byte("original")) {
		t.Fatalf("GET on an upload URL: status %d (%s), want 403", status, body)
	}
	_, got, _ := e.download(t, ds, "u/d/m.json", "")
	if string(got) != "original" {
		t.Fatalf("object changed to %q", got)
	}
}

func testOversized(t *testing.T, e *env) {
	const declared = 1000
	up, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/big.json", storage.UploadOptions{MaxSize: declared})
	if err != nil {
		t.Fatal(err)
	}
	status, body, _ := e.do(t, http.MethodPut, up, hdr, bytes.NewReader(make([]byte, declared+1)), declared+1)
	if status != e.TooLargeStatus {
		t.Fatalf("PUT %d bytes on a %d-byte URL: status %d (%s), want %d", declared+1, declared, status, body, e.TooLargeStatus)
	}
	e.requireMissing(t, ds, "u/d/big.json")

	// Smaller than declared.
	status, body, _ = e.do(t, http.MethodPut, up, hdr, bytes.NewReader(make([]byte, declared-1)), declared-1)
	if e.ExactUploadSize {
		if status != http.StatusForbidden {
			t.Fatalf("PUT %d bytes on an exact %d-byte URL: status %d (%s), want 403", declared-1, declared, status, body)
		}
		e.requireMissing(t, ds, "u/d/big.json")
	} else if status != http.StatusOK {
		t.Fatalf("PUT %d bytes on a %d-byte URL: status %d (%s), want 200", declared-1, declared, status, body)
	}
}

// endless yields n bytes of a fixed pattern without allocating them.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 31 % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func testChunkedOversized(t *testing.T, e *env) {
	const declared = 64 << 10
	up, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/chunked.json", storage.UploadOptions{MaxSize: declared})
	if err != nil {
		t.Fatal(err)
	}
	// No Content-Length: the limit must be enforced while streaming.
	status, body, _ := e.do(t, http.MethodPut, up, hdr, &patternReader{n: 4 << 20}, -1)
	want := e.TooLargeStatus
	if e.ExactUploadSize {
		want = http.StatusForbidden // the signed Content-Length is missing
	}
	if status != want && status != 0 {
		t.Fatalf("chunked PUT of 4 MiB on a 64 KiB URL: status %d (%s), want %d", status, body, want)
	}
	e.requireMissing(t, ds, "u/d/chunked.json")
}

func testSizeLimits(t *testing.T, e *env) {
	for _, c := range []struct {
		bucket string
		max    int64
	}{{ds, storage.MaxDatasetSize}, {storage.BucketModels, storage.MaxModelSize}} {
		if got := storage.MaxObjectSize(c.bucket); got != c.max {
			t.Fatalf("MaxObjectSize(%s) = %d, want %d", c.bucket, got, c.max)
		}
		if _, _, err := e.Store.SignedUploadURL(e.ctx, c.bucket, "u/x", storage.UploadOptions{MaxSize: c.max}); err != nil {
			t.Fatalf("%s: upload URL at the limit: %v", c.bucket, err)
		}
		if _, _, err := e.Store.SignedUploadURL(e.ctx, c.bucket, "u/x", storage.UploadOptions{MaxSize: c.max + 1}); !errors.Is(err, storage.ErrTooLarge) {
			t.Fatalf("%s: upload URL over the limit: want ErrTooLarge, got %v", c.bucket, err)
		}
		if err := e.Store.Put(e.ctx, c.bucket, "u/x", strings.NewReader(""), c.max+1, ""); !errors.Is(err, storage.ErrTooLarge) {
			t.Fatalf("%s: Put over the limit: want ErrTooLarge, got %v", c.bucket, err)
		}
	}
	if storage.MaxObjectSize("nope") != 0 {
		t.Fatal("MaxObjectSize of an unknown bucket should be 0")
	}
}

// BadPaths are object paths every backend must refuse with ErrInvalidPath.
var BadPaths = []string{
	"",
	"/etc/passwd",
	"../../etc/passwd",
	"a/../../b",
	"a/./b",
	"..",
	".",
	"a//b",
	"a/b/",
	`a\..\b`,
	"%2e%2e/%2e%2e/etc/passwd",
	"a%2F..%2Fb",
	"a/\x00b",
	"a/b\nc",
	"a/b?x=1",
	"a/b#frag",
	strings.Repeat("a", 256),
	strings.Repeat("a/", 600) + "b",
	"a/\xff\xfe",
}

func testInvalidPaths(t *testing.T, e *env) {
	e.upload(t, ds, "victim/file.json", []byte("keep"), "")
	for _, p := range BadPaths {
		name := fmt.Sprintf("%.40q", p)
		if _, _, err := e.Store.SignedUploadURL(e.ctx, ds, p, storage.UploadOptions{MaxSize: 1}); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("SignedUploadURL(%s): want ErrInvalidPath, got %v", name, err)
		}
		if _, err := e.Store.SignedDownloadURL(e.ctx, ds, p, time.Minute, ""); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("SignedDownloadURL(%s): want ErrInvalidPath, got %v", name, err)
		}
		if _, err := e.Store.Open(e.ctx, ds, p); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Open(%s): want ErrInvalidPath, got %v", name, err)
		}
		if _, err := e.Store.Stat(e.ctx, ds, p); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Stat(%s): want ErrInvalidPath, got %v", name, err)
		}
		if err := e.Store.Put(e.ctx, ds, p, strings.NewReader("x"), 1, ""); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Put(%s): want ErrInvalidPath, got %v", name, err)
		}
		if err := e.Store.Delete(e.ctx, ds, p); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Delete(%s): want ErrInvalidPath, got %v", name, err)
		}
	}
	_, got, _ := e.download(t, ds, "victim/file.json", "")
	if string(got) != "keep" {
		t.Fatalf("victim object changed: %q", got)
	}
}

func testUnknownBucket(t *testing.T, e *env) {
	for _, b := range []string{"", "other", "lora-datasets/..", "../lora-models", "LORA-DATASETS"} {
		if _, err := e.Store.Stat(e.ctx, b, "a/b"); !errors.Is(err, storage.ErrUnknownBucket) {
			t.Errorf("Stat in bucket %q: want ErrUnknownBucket, got %v", b, err)
		}
		if _, _, err := e.Store.SignedUploadURL(e.ctx, b, "a/b", storage.UploadOptions{MaxSize: 1}); !errors.Is(err, storage.ErrUnknownBucket) {
			t.Errorf("SignedUploadURL in bucket %q: want ErrUnknownBucket, got %v", b, err)
		}
		if err := e.Store.Put(e.ctx, b, "a/b", strings.NewReader("x"), 1, ""); !errors.Is(err, storage.ErrUnknownBucket) {
			t.Errorf("Put in bucket %q: want ErrUnknownBucket, got %v", b, err)
		}
	}
}

func testTTL(t *testing.T, e *env) {
	if _, err := e.Store.SignedDownloadURL(e.ctx, ds, "a/b", -time.Second, ""); err == nil {
		t.Error("negative TTL: want an error")
	}
	if _, err := e.Store.SignedDownloadURL(e.ctx, ds, "a/b", storage.MaxURLTTL+time.Second, ""); err == nil {
		t.Error("TTL over the maximum: want an error")
	}
	if _, _, err := e.Store.SignedUploadURL(e.ctx, ds, "a/b", storage.UploadOptions{MaxSize: 1, TTL: -time.Minute}); err == nil {
		t.Error("negative upload TTL: want an error")
	}
}

// testLargeUpload streams 50 MB through the signed URL and checks the
// stored bytes. Where the server streams to disk in this process
// (MeasureUploadMemory) it also checks that the heap stays bounded: neither
// the client (a generated body) nor the server may hold the body in memory.
func testLargeUpload(t *testing.T, e *env) {
	const size = 50 << 20
	const bound = 16 << 20
	if testing.Short() {
		t.Skip("short mode")
	}
	up, hdr, err := e.Store.SignedUploadURL(e.ctx, ds, "u/d/large.jsonl", storage.UploadOptions{MaxSize: size})
	if err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	status, body, _ := e.do(t, http.MethodPut, up, hdr, &patternReader{n: size}, size)
	close(stop)
	<-done
	if status != http.StatusOK {
		t.Fatalf("PUT 50 MB: status %d: %s", status, body)
	}
	var resp struct {
		Success bool `json:"success"`
		Data    struct {
			Size int64 `json:"size"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err == nil && resp.Success && resp.Data.Size != size {
		t.Fatalf("PUT reported size %d, want %d", resp.Data.Size, size)
	}
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("heap: before %d KiB, peak %d KiB, growth %d KiB during a %d MiB upload", before.HeapAlloc>>10, peak.Load()>>10, growth>>10, size>>20)
	if !e.MeasureUploadMemory {
		t.Log("memory bound not checked: the upload server is not in this process or keeps objects in memory by design")
	} else if growth > bound {
		t.Fatalf("heap grew by %d MiB during a 50 MiB streamed upload (bound %d MiB)", growth>>20, bound>>20)
	}

	info, err := e.Store.Stat(e.ctx, ds, "u/d/large.jsonl")
	if err != nil || info.Size != size {
		t.Fatalf("Stat after 50 MB upload: %+v %v", info, err)
	}
	rc, err := e.Store.Open(e.ctx, ds, "u/d/large.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gotHash, wantHash := sha256.New(), sha256.New()
	if _, err := io.Copy(gotHash, rc); err != nil {
		t.Fatal(err)
	}
	io.Copy(wantHash, &patternReader{n: size})
	if !bytes.Equal(gotHash.Sum(nil), wantHash.Sum(nil)) {
		t.Fatal("50 MB object differs from the upload")
	}
}
