package local_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
)

// TestUploadGuard: the bucket's guard is asked before any byte is stored; a
// closed upload is a 403 that leaves the object as it was (or absent), a
// guard that cannot decide is a 503, and other buckets are unaffected.
func TestUploadGuard(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var closed atomic.Bool
	var broken atomic.Bool
	var asked atomic.Int32
	f.store.GuardUploads(storage.BucketDatasets, func(ctx context.Context, bucket, path string) error {
		asked.Add(1)
		if bucket != storage.BucketDatasets || path != "u/d/g.json" && path != "u/d/never.json" {
			return fmt.Errorf("unexpected guard call for %s/%s", bucket, path)
		}
		if broken.Load() {
			return errors.New("database unavailable")
		}
		if closed.Load() {
			return fmt.Errorf("%w: the dataset is ready: its file can no longer be replaced", storage.ErrUploadClosed)
		}
		return nil
	})
	u, _, _ := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "u/d/g.json", storage.UploadOptions{MaxSize: 10})
	if r := mustDo(t, f.srv.Client(), http.MethodPut, u, "first"); r.status != 200 {
		t.Fatalf("open upload: %d %s", r.status, r.body)
	}
	if asked.Load() != 2 {
		t.Fatalf("guard asked %d times, want 2 (before reading and before commit)", asked.Load())
	}
	closed.Store(true)
	r := mustDo(t, f.srv.Client(), http.MethodPut, u, "0000000000")
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "can no longer be replaced") || !strings.Contains(r.body, `"closed"`) {
		t.Fatalf("closed upload: %d %s", r.status, r.body)
	}
	d, _ := f.store.SignedDownloadURL(ctx, storage.BucketDatasets, "u/d/g.json", time.Minute, "")
	if r := mustDo(t, f.srv.Client(), http.MethodGet, d, ""); r.body != "first" {
		t.Fatalf("object after a refused PUT: %q, want it unchanged", r.body)
	}
	// A URL for an object that was never written (dataset deleted) writes nothing.
	u2, _, _ := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "u/d/never.json", storage.UploadOptions{MaxSize: 10})
	if r := mustDo(t, f.srv.Client(), http.MethodPut, u2, "orphan"); r.status != http.StatusForbidden {
		t.Fatalf("upload after close: %d %s", r.status, r.body)
	}
	if _, err := f.store.Stat(ctx, storage.BucketDatasets, "u/d/never.json"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("refused upload left an object: %v", err)
	}
	broken.Store(true)
	if r := mustDo(t, f.srv.Client(), http.MethodPut, u2, "x"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("guard error: %d %s, want 503", r.status, r.body)
	}
	// The models bucket has no guard.
	um, _, _ := f.store.SignedUploadURL(ctx, storage.BucketModels, "u/j/a.bin", storage.UploadOptions{MaxSize: 10})
	if r := mustDo(t, f.srv.Client(), http.MethodPut, um, "model"); r.status != 200 {
		t.Fatalf("unguarded bucket: %d %s", r.status, r.body)
	}
	assertNoTempFiles(t, f.root)
}

// TestUploadGuardAtCommit: an upload that was open when it started but
// was closed while its body streamed (the guard's second answer) is not put
// in place.
func TestUploadGuardAtCommit(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var calls atomic.Int32
	f.store.GuardUploads(storage.BucketDatasets, func(context.Context, string, string) error {
		if calls.Add(1) > 1 {
			return fmt.Errorf("%w: the dataset was deleted", storage.ErrUploadClosed)
		}
		return nil
	})
	u, _, _ := f.store.SignedUploadURL(ctx, storage.BucketDatasets, "u/d/late.json", storage.UploadOptions{MaxSize: 100})
	r := mustDo(t, f.srv.Client(), http.MethodPut, u, "a body that streams while the dataset is deleted")
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "deleted") || calls.Load() != 2 {
		t.Fatalf("upload closed mid-stream: %d %s (guard asked %d times)", r.status, r.body, calls.Load())
	}
	if _, err := f.store.Stat(ctx, storage.BucketDatasets, "u/d/late.json"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("upload closed mid-stream left an object: %v", err)
	}
	assertNoTempFiles(t, f.root)
}

// TestSweepTemp: temporary upload files older than the limit (by the
// store's clock) are removed at any depth in every bucket; recent ones,
// objects and look-alike names are kept.
func TestSweepTemp(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, func() time.Time { return now })
	ctx := context.Background()
	if err := f.store.Put(ctx, storage.BucketDatasets, "u/d/kept.json", strings.NewReader("{}"), 2, ""); err != nil {
		t.Fatal(err)
	}
	write := func(rel string, age time.Duration) string {
		p := filepath.Join(f.root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
		mt := now.Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := []string{
		write("lora-datasets/u/d/.brightrun-upload-0011aa.tmp", 2*time.Hour),
		write("lora-models/u/j/adapter/.brightrun-upload-ffee.tmp", 61*time.Minute),
	}
	kept := []string{
		write("lora-datasets/u/d/.brightrun-upload-recent.tmp", 10*time.Minute),
		write("lora-datasets/u/d/old-object.json", 48*time.Hour),
		write("lora-models/u/j/.brightrun-upload-notatemp", 48*time.Hour),
		filepath.Join(f.root, "lora-datasets/u/d/kept.json"),
	}
	n, err := f.store.SweepTemp(time.Hour)
	if err != nil || n != len(stale) {
		t.Fatalf("SweepTemp = %d, %v; want %d", n, err, len(stale))
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temp file kept: %s", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if n, err := f.store.SweepTemp(time.Hour); err != nil || n != 0 {
		t.Fatalf("second sweep = %d, %v", n, err)
	}
}
