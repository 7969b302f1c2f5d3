package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/storage/local"
	"github.com/brightrun/brightrun/internal/storage/storagetest"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type fixture struct {
	store *local.Store
	srv   *httptest.Server
	root  string
}

// newFixture starts the handler mounted the way the server mounts it.
func newFixture(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	root := filepath.Join(t.TempDir(), "storage")
	s, err := local.New(local.Options{Root: root, BaseURL: srv.URL, Secret: secret, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mux := http.NewServeMux()
	mux.Handle("/storage/v1/", s.Handler())
	h = mux
	return &fixture{store: s, srv: srv, root: root}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, clock *storagetest.Clock) storagetest.Harness {
		f := newFixture(t, clock.Now)
		return storagetest.Harness{
			Store:               f.store,
			Client:              f.srv.Client(),
			SignatureParam:      "sig",
			ExpiryParam:         "exp",
			TooLargeStatus:      http.StatusRequestEntityTooLarge,
			MeasureUploadMemory: true,
		}
	})
}

func TestNewValidation(t *testing.T) {
	dir := t.TempDir()
	for name, o := range map[string]local.Options{
		"no root":      {BaseURL: "http://x", Secret: secret},
		"short secret": {Root: dir, BaseURL: "http://x", Secret: []byte("short")},
		"bad base":     {Root: dir, BaseURL: "localhost:8080", Secret: secret},
	} {
		if _, err := local.New(o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestURLShape(t *testing.T) {
	f := newFixture(t, nil)
	u, hdr, err := f.store.SignedUploadURL(context.Background(), storage.BucketDatasets, "u/d/my file.json", storage.UploadOptions{MaxSize: 42, ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	if pu.EscapedPath() != "/storage/v1/lora-datasets/u/d/my%20file.json" {
		t.Fatalf("path %q", pu.EscapedPath())
	}
	q := pu.Query()
	if q.Get("method") != "PUT" || q.Get("max") != "42" || q.Get("exp") == "" || q.Get("sig") == "" {
		t.Fatalf("query %v", q)
	}
	if hdr["Content-Type"] != "application/json" {
		t.Fatalf("headers %v", hdr)
	}
}

// Each signed value is bound: changing max (the size limit) breaks the signature.
func TestTamperedMaxAndMethod(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, _, _ := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "u/d/x.json", storage.UploadOptions{MaxSize: 10})
	for name, mod := range map[string]func(url.Values){
		"max raised":   func(q url.Values) { q.Set("max", "1000000") },
		"method":       func(q url.Values) { q.Set("method", "GET") },
		"dn added":     func(q url.Values) { q.Set("dn", "x.exe") },
		"exp dropped":  func(q url.Values) { q.Del("exp") },
		"sig appended": func(q url.Values) { q.Set("sig", q.Get("sig")+"A") },
	} {
		pu, _ := url.Parse(u)
		q := pu.Query()
		mod(q)
		pu.RawQuery = q.Encode()
		req, _ := http.NewRequest(http.MethodPut, pu.String(), strings.NewReader(strings.Repeat("x", 100)))
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d (%s), want 403", name, resp.StatusCode, body)
		}
	}
	// A URL signed by another server (other secret) is refused.
	other, err := local.New(local.Options{Root: t.TempDir(), BaseURL: f.srv.URL, Secret: []byte("another secret, 32 bytes long!!!")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	u2, _, _ := other.SignedUploadURL(ctx, storage.BucketDatasets, "u/d/x.json", storage.UploadOptions{MaxSize: 10})
	resp := mustDo(t, f.srv.Client(), http.MethodPut, u2, "hello")
	if resp.status != http.StatusForbidden {
		t.Fatalf("foreign URL: status %d", resp.status)
	}
}

type result struct {
	status int
	body   string
	header http.Header
}

func mustDo(t *testing.T, c *http.Client, method, u, body string) result {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b), resp.Header}
}

func TestEnvelopes(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, _, _ := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "u/d/e.json", storage.UploadOptions{MaxSize: 10})
	r := mustDo(t, f.srv.Client(), http.MethodPut, u, "0123456")
	var ok struct {
		Success bool           `json:"success"`
		Data    map[string]any `json:"data"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &ok) != nil || !ok.Success || ok.Data["size"] != float64(7) {
		t.Fatalf("success envelope: %d %s", r.status, r.body)
	}
	r = mustDo(t, f.srv.Client(), http.MethodPut, u, "0123456789X")
	var bad struct {
		Error   string         `json:"error"`
		Details map[string]any `json:"details"`
	}
	if r.status != 413 || json.Unmarshal([]byte(r.body), &bad) != nil || bad.Error == "" || bad.Details["max_size"] != float64(10) {
		t.Fatalf("error envelope: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q", ct)
	}
	// The failed upload did not replace the earlier object.
	d, _ := f.store.SignedDownloadURL(ctx, storage.BucketDatasets, "u/d/e.json", time.Minute, "")
	if r := mustDo(t, f.srv.Client(), http.MethodGet, d, ""); r.body != "0123456" {
		t.Fatalf("object after refused overwrite: %q", r.body)
	}
	assertNoTempFiles(t, f.root)
}

func assertNoTempFiles(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".brightrun-upload-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// Content-Length over the limit is refused before the body is read: the
// client sends headers only and still gets its 413.
func TestContentLengthRefusedBeforeReading(t *testing.T) {
	f := newFixture(t, nil)
	u, _, _ := f.store.SignedUploadURL(context.Background(), storage.BucketDatasets, "u/d/cl.json", storage.UploadOptions{MaxSize: 100})
	pu, _ := url.Parse(u)
	conn, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000000000\r\n\r\n", pu.RequestURI(), pu.Host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response before the body was sent: %v", err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	assertNoTempFiles(t, f.root)
}

func TestDownloadHeaders(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if err := f.store.Put(ctx, storage.BucketDatasets, "u/d/page.html", strings.NewReader("<script>alert(1)</script>"), 25, "text/html"); err != nil {
		t.Fatal(err)
	}
	d, _ := f.store.SignedDownloadURL(ctx, storage.BucketDatasets, "u/d/page.html", time.Minute, "")
	r := mustDo(t, f.srv.Client(), http.MethodGet, d, "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	for k, want := range map[string]string{
		"Content-Disposition":     "attachment",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// Ranges work (resumable downloads).
	req, _ := http.NewRequest(http.MethodGet, d, nil)
	req.Header.Set("Range", "bytes=0-7")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(b) != "<script>" {
		t.Fatalf("range: %d %q", resp.StatusCode, b)
	}
	// HEAD is allowed on a download URL.
	if r := mustDo(t, f.srv.Client(), http.MethodHead, d, ""); r.status != 200 || r.header.Get("Content-Length") != "25" {
		t.Fatalf("HEAD: %d %v", r.status, r.header)
	}
	// A signed download name is used.
	d, _ = f.store.SignedDownloadURL(ctx, storage.BucketDatasets, "u/d/page.html", time.Minute, `evil"name.txt`)
	if r := mustDo(t, f.srv.Client(), http.MethodGet, d, ""); !strings.Contains(r.header.Get("Content-Disposition"), `filename="evil\"name.txt"`) {
		t.Fatalf("Content-Disposition %q", r.header.Get("Content-Disposition"))
	}
}

// Raw request paths that try to leave the bucket, sent as-is to the handler
// (and through a ServeMux), must never serve a file.
func TestHTTPTraversal(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	outside := filepath.Join(filepath.Dir(f.root), "outside.txt")
	os.WriteFile(outside, []byte("TOP SECRET"), 0o600)
	f.store.Put(ctx, storage.BucketModels, "x/model.bin", strings.NewReader("MODEL"), 5, "")
	good, _ := f.store.SignedDownloadURL(ctx, storage.BucketDatasets, "u/d/f.json", time.Minute, "")
	query := good[strings.Index(good, "?"):]

	direct := httptest.NewServer(f.store.Handler())
	defer direct.Close()
	stripped := httptest.NewServer(http.StripPrefix("/storage/v1", f.store.Handler()))
	defer stripped.Close()

	paths := []string{
		"/storage/v1/lora-datasets/../../outside.txt",
		"/storage/v1/lora-datasets/%2e%2e/%2e%2e/outside.txt",
		"/storage/v1/lora-datasets/%2E%2E%2F%2E%2E%2Foutside.txt",
		"/storage/v1/lora-datasets/u/..%2f..%2f..%2foutside.txt",
		"/storage/v1/lora-datasets/..%5c..%5coutside.txt",
		"/storage/v1/lora-datasets/%252e%252e/outside.txt",
		"/storage/v1/lora-datasets/u/%00/x",
		"/storage/v1/lora-datasets//outside.txt",
		"/storage/v1/lora-models/x/model.bin",
		"/storage/v1/../lora-models/x/model.bin",
		"/storage/v1/lora-datasets",
		"/storage/v1/unknown/u/d/f.json",
	}
	for _, srv := range []*httptest.Server{f.srv, direct, stripped} {
		for _, p := range paths {
			for _, method := range []string{http.MethodGet, http.MethodPut} {
				req, err := http.NewRequest(method, srv.URL+"/PLACEHOLDER", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				req.URL.Opaque = p // send the path exactly as written
				req.URL.RawQuery = query[1:]
				client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, p, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 300 || strings.Contains(string(b), "TOP SECRET") || strings.Contains(string(b), "MODEL") {
					t.Errorf("%s %s: status %d body %q", method, p, resp.StatusCode, b)
				}
			}
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "TOP SECRET" {
		t.Fatal("file outside the root was modified")
	}
}

// Symlinks inside a bucket cannot lead out of it.
func TestSymlinkEscape(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	outsideDir := t.TempDir()
	os.WriteFile(filepath.Join(outsideDir, "secret.txt"), []byte("TOP SECRET"), 0o600)
	bucketDir := filepath.Join(f.root, storage.BucketDatasets)
	os.MkdirAll(filepath.Join(bucketDir, "u"), 0o750)
	if err := os.Symlink(filepath.Join(outsideDir, "secret.txt"), filepath.Join(bucketDir, "u", "abs-link.txt")); err != nil {
		t.Skipf("symlinks unsupported: %v", err)
	}
	rel, _ := filepath.Rel(filepath.Join(bucketDir, "u"), filepath.Join(outsideDir, "secret.txt"))
	os.Symlink(rel, filepath.Join(bucketDir, "u", "rel-link.txt"))
	os.Symlink(outsideDir, filepath.Join(bucketDir, "u", "dir-link"))
	// A link into the other bucket is an escape too.
	os.Symlink("../../lora-models", filepath.Join(bucketDir, "u", "models-link"))
	f.store.Put(ctx, storage.BucketModels, "m.bin", strings.NewReader("MODEL"), 5, "")

	for _, p := range []string{"u/abs-link.txt", "u/rel-link.txt", "u/dir-link/secret.txt", "u/models-link/m.bin"} {
		if _, err := f.store.Stat(ctx, storage.BucketDatasets, p); err == nil {
			t.Errorf("Stat(%s) followed a link out of the bucket", p)
		}
		if rc, err := f.store.Open(ctx, storage.BucketDatasets, p); err == nil {
			rc.Close()
			t.Errorf("Open(%s) followed a link out of the bucket", p)
		} else if !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("Open(%s): want ErrInvalidPath, got %v", p, err)
		}
		d, err := f.store.SignedDownloadURL(ctx, storage.BucketDatasets, p, time.Minute, "")
		if err != nil {
			t.Fatal(err)
		}
		if r := mustDo(t, f.srv.Client(), http.MethodGet, d, ""); r.status < 400 || strings.Contains(r.body, "SECRET") || strings.Contains(r.body, "MODEL") {
			t.Errorf("GET %s: %d %q", p, r.status, r.body)
		}
	}
	// Writes through a directory link are refused and create nothing outside.
	if err := f.store.Put(ctx, storage.BucketDatasets, "u/dir-link/new.txt", strings.NewReader("x"), 1, ""); err == nil {
		t.Error("Put through a directory link succeeded")
	}
	u, _, _ := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "u/dir-link/new2.txt", storage.UploadOptions{MaxSize: 1})
	if r := mustDo(t, f.srv.Client(), http.MethodPut, u, "x"); r.status < 400 {
		t.Errorf("PUT through a directory link: %d", r.status)
	}
	entries, _ := os.ReadDir(outsideDir)
	if len(entries) != 1 {
		t.Fatalf("files were created outside the bucket: %v", entries)
	}
}

func TestReservedTempNames(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.store.Stat(context.Background(), storage.BucketDatasets, "u/.brightrun-upload-abc.tmp")
	if !errors.Is(err, storage.ErrInvalidPath) {
		t.Fatalf("want ErrInvalidPath, got %v", err)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, nil)
	u, _, _ := f.store.SignedUploadURL(context.Background(), storage.BucketDatasets, "u/d/c.json", storage.UploadOptions{MaxSize: 1})
	for origin, allowed := range map[string]bool{f.srv.URL: true, "https://evil.example": false} {
		req, _ := http.NewRequest(http.MethodOptions, u, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if allowed && (got != origin || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT")) {
			t.Errorf("origin %s: preflight headers %v", origin, resp.Header)
		}
		if !allowed && got != "" {
			t.Errorf("origin %s allowed: %q", origin, got)
		}
	}
}

func TestContentTypeFor(t *testing.T) {
	for p, want := range map[string]string{
		"a/b.json": "application/json", "a/b.JSONL": "application/x-jsonlines",
		"x.safetensors": "application/octet-stream", "noext": "application/octet-stream",
	} {
		if got := local.ContentTypeFor(p); got != want {
			t.Errorf("ContentTypeFor(%q) = %q, want %q", p, got, want)
		}
	}
}
