package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
)

// TestUploadURLClosedAfterConfirmAndDelete: a dataset's signed upload URL
// stops working once the dataset is confirmed (the validated object is
// immutable: a second PUT is refused and the bytes stay identical) and once
// it is deleted (a late PUT is refused and leaves no object behind), on
// both database engines and both storage backends.
func TestUploadURLClosedAfterConfirmAndDelete(t *testing.T) {
	file, err := os.ReadFile(testdata.Dir(t) + "/" + testdata.EQ12JSONL)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, len(file))
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		for _, backend := range []string{"local", "s3"} {
			t.Run(backend, func(t *testing.T) {
				var env map[string]string
				if backend == "s3" {
					env = s3Env(t)
				}
				s := testserver.Start(t, e, testserver.Options{Env: env})
				c := s.SignUp(t, "immutable@example.com")
				ctx := store.AsSystem(context.Background())
				stored := func(path string) ([]byte, error) {
					rc, err := s.App.Storage.Open(ctx, storage.BucketDatasets, path)
					if err != nil {
						return nil, err
					}
					defer rc.Close()
					return io.ReadAll(rc)
				}
				size := int64(len(file))

				// Write-once URLs do not lock a user out: a wrong-sized upload is
				// removed at confirm, and the same URL then takes the right file.
				short := createDataset(t, c, "short", "short.jsonl", size)
				if res := putFile(t, short, bytes.NewReader(file[:size-1]), size-1); res.StatusCode != 200 {
					t.Fatalf("short upload: %d", res.StatusCode)
				}
				c.MustJSON("POST", "/api/datasets/"+short.Dataset.ID+"/confirm", nil, 400, nil)
				if res := putFile(t, short, bytes.NewReader(file), size); res.StatusCode != 200 {
					t.Fatalf("upload after a refused confirm: %d", res.StatusCode)
				}
				if res := putFile(t, short, bytes.NewReader(zeros), size); res.StatusCode != 412 {
					t.Fatalf("second PUT on a write-once URL: %d, want 412", res.StatusCode)
				}
				c.MustJSON("POST", "/api/datasets/"+short.Dataset.ID+"/confirm", nil, 200, nil)

				// PUT after confirm.
				up := createDataset(t, c, "immutable", "eq12.jsonl", size)
				if res := putFile(t, up, bytes.NewReader(file), size); res.StatusCode != 200 {
					t.Fatalf("upload: %d", res.StatusCode)
				}
				c.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil, 200, nil)
				if d := waitDataset(t, c, up.Dataset.ID); d.Status != "ready" {
					t.Fatalf("dataset %s, want ready", d.Status)
				}
				if res := putFile(t, up, bytes.NewReader(zeros), size); res.StatusCode < 400 || res.StatusCode >= 500 {
					t.Fatalf("PUT after confirm: status %d, want a 4xx", res.StatusCode)
				}
				if got, err := stored(up.StoragePath); err != nil || !bytes.Equal(got, file) {
					t.Fatalf("object after a PUT on a confirmed dataset: %d bytes, %v; want the validated bytes unchanged", len(got), err)
				}
				c.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/upload-url", nil, 409, nil)

				// PUT after DELETE, for a confirmed dataset and for one never uploaded.
				up2 := createDataset(t, c, "never uploaded", "late.jsonl", size)
				for _, u := range []uploadView{up, up2} {
					c.MustJSON("DELETE", "/api/datasets/"+u.Dataset.ID, nil, 200, nil)
					if res := putFile(t, u, bytes.NewReader(zeros), size); res.StatusCode < 400 || res.StatusCode >= 500 {
						t.Fatalf("PUT after delete: status %d, want a 4xx", res.StatusCode)
					}
				}
				// At most an empty tombstone remains (S3, whose presigned URLs cannot
				// be revoked) until every upload URL has expired; then nothing.
				for _, u := range []uploadView{up, up2} {
					got, err := stored(u.StoragePath)
					switch {
					case backend == "local" && !errors.Is(err, storage.ErrNotFound):
						t.Fatalf("local: object after delete: %d bytes, %v", len(got), err)
					case backend == "s3" && (err != nil || len(got) != 0):
						t.Fatalf("s3: object after delete: %d bytes, %v; want an empty tombstone", len(got), err)
					}
				}
				if _, err := s.App.Datasets.SweepDeletes(ctx, time.Now().UTC()); err != nil {
					t.Fatal(err)
				}
				if backend == "s3" {
					if _, err := stored(up2.StoragePath); err != nil {
						t.Fatalf("s3: tombstone swept while upload URLs may still be valid: %v", err)
					}
				}
				if _, err := s.App.Datasets.SweepDeletes(ctx, time.Now().UTC().Add(2*time.Hour)); err != nil {
					t.Fatal(err)
				}
				for _, u := range []uploadView{up, up2} {
					if got, err := stored(u.StoragePath); !errors.Is(err, storage.ErrNotFound) {
						t.Fatalf("object after the sweep: %d bytes, %v; want none", len(got), err)
					}
				}
			})
		}
	})
}

// TestStaleUploadFilesSweptAtStartup: temporary upload files a crash left
// in the local storage are removed when the server starts, once older than
// an hour; a recent one (an upload may still be writing it) and the
// objects are kept.
func TestStaleUploadFilesSweptAtStartup(t *testing.T) {
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "storage", storage.BucketDatasets, "u", "d")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	files := map[string]bool{".brightrun-upload-00aa.tmp": false, ".brightrun-upload-11bb.tmp": true, "train.jsonl": true}
	for name, keep := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
		if !keep || name == "train.jsonl" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	testserver.Start(t, testdb.Engines()[0], testserver.Options{Env: map[string]string{"BRIGHTRUN_DATA_DIR": dataDir}})
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if keep && err != nil || !keep && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: keep=%v, stat: %v", name, keep, err)
		}
	}
}

// TestAgentUploadReservedName: an agent asking to upload a file whose name
// is reserved for the storage's temporary files gets a 400 naming the
// field (it used to be a 500 on the local backend).
func TestAgentUploadReservedName(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		_, j, ag := claimedJob(t, s, "reserved@example.com")
		for _, name := range []string{".brightrun-upload-x", "sub/.brightrun-upload-1.tmp"} {
			r := ag.Do("POST", "/api/agent/jobs/"+j.ID+"/uploads", map[string]any{"kind": "final", "files": []map[string]any{{"name": name, "size": 10}}})
			if r.Status != 400 || !strings.Contains(string(r.Body), "files.name") {
				t.Fatalf("upload name %q: %d %s, want 400 naming files.name", name, r.Status, r.Body)
			}
		}
		ag.MustJSON("POST", "/api/agent/jobs/"+j.ID+"/uploads", map[string]any{"kind": "final", "files": []map[string]any{{"name": "adapter_model.safetensors", "size": 10}}}, 200, nil)
	})
}

// TestStaticNoListingAppNotFound: /static/ lists nothing and unknown static
// paths get the app's HTML 404 page, like any unknown page.
func TestStaticNoListingAppNotFound(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.NewClient(t)
	get := func(p string) testserver.Response { // as a browser asks
		req, err := http.NewRequest("GET", s.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		return c.Send(req)
	}
	page := get("/no-such-page")
	if page.Status != 404 || !strings.Contains(string(page.Body), "Page not found") {
		t.Fatalf("app 404: %d %.200s", page.Status, page.Body)
	}
	for _, p := range []string{"/static/", "/static/nope", "/static/dist/", "/static/nope.js?v=1"} {
		r := get(p)
		if r.Status != 404 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.Body), "Page not found") ||
			strings.Contains(string(r.Body), "README.md") || strings.Contains(string(r.Body), "<pre>") {
			t.Errorf("GET %s: %d %s %.300s; want the app's 404 page and no listing", p, r.Status, r.Header.Get("Content-Type"), r.Body)
		}
	}
}
