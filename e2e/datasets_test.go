package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/datasets"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/sqlstore"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/google/uuid"
)

// TestDatasetRealFiles uploads the three real files through the real signed
// URL, on both database engines and both storage backends, and checks the
// exact counts and that EQ-12's JSON and JSONL forms split identically.
func TestDatasetRealFiles(t *testing.T) {
	dir := testdata.Dir(t)
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		for _, backend := range []string{"local", "s3"} {
			t.Run(backend, func(t *testing.T) {
				var env map[string]string
				if backend == "s3" {
					env = s3Env(t)
				}
				s := testserver.Start(t, e, testserver.Options{Env: env})
				c := s.SignUp(t, "data@example.com")
				want := map[string]struct{ conv, pairs, trainable int }{
					testdata.EQ12JSON: {12, 89, 44}, testdata.EQ12JSONL: {12, 44, 44}, testdata.EQ18JSON: {18, 128, 62},
				}
				got := map[string]datasetView{}
				for _, f := range []string{testdata.EQ12JSON, testdata.EQ12JSONL, testdata.EQ18JSON} {
					id := uploadFile(t, c, f, dir+"/"+f)
					d := waitDataset(t, c, id)
					w := want[f]
					st := d.Statistics
					if d.Status != "ready" || !d.TrainingReady || st == nil || st.Conversations != w.conv || st.TotalPairs != w.pairs || st.TrainablePairs != w.trainable ||
						*d.TotalTrainingPairs+*d.TotalValidationPairs != w.trainable || len(d.SampleData) != 3 || *d.TotalTokens <= 0 {
						t.Fatalf("%s: %+v stats %+v", f, d, st)
					}
					if !strings.HasPrefix(d.StoragePath, c.UserID+"/"+id+"/") {
						t.Fatalf("storage path %q not under user/dataset", d.StoragePath)
					}
					got[f] = d
				}
				a, b := got[testdata.EQ12JSON].Statistics, got[testdata.EQ12JSONL].Statistics
				if !slices.Equal(a.ValidationConversationKeys, b.ValidationConversationKeys) || a.ValidationPairs != b.ValidationPairs || len(a.ValidationConversationKeys) != 1 {
					t.Fatalf("JSON and JSONL splits differ: %v/%d vs %v/%d", a.ValidationConversationKeys, a.ValidationPairs, b.ValidationConversationKeys, b.ValidationPairs)
				}
				if f := got[testdata.EQ12JSONL]; f.Format != "brightrun_lora_v4_jsonl" || len(f.ValidationWarnings) == 0 {
					t.Fatalf("JSONL: format %q warnings %v (the header's total_pairs 89 disagrees with 44 lines)", f.Format, f.ValidationWarnings)
				}
				var notes struct {
					Notifications []struct{ Type, ActionURL string }
					UnreadCount   int `json:"unread_count"`
				}
				c.MustJSON("GET", "/api/notifications", nil, 200, &notes)
				if notes.UnreadCount != 3 || notes.Notifications[0].Type != "dataset_ready" {
					t.Fatalf("notifications: %+v", notes)
				}
			})
		}
	})
}

func TestDatasetInvalidFileReportsErrors(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		c := s.SignUp(t, "bad@example.com")
		body := []byte("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n" +
			"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n" +
			"{\"messages\": [ {\"role\": \"user\", \"content\": \"broken\" }\n")
		id := uploadBytes(t, c, "broken", "chat.jsonl", body)
		d := waitDataset(t, c, id)
		if d.Status != "error" || d.TrainingReady || d.ErrorCount == 0 || d.ValidationErrors[0].Line != 3 || d.ValidationErrors[0].Suggestion == "" {
			t.Fatalf("want an error on line 3 with a suggestion: %+v", d)
		}
		var notes struct {
			Notifications []struct{ Type string }
		}
		c.MustJSON("GET", "/api/notifications", nil, 200, &notes)
		if len(notes.Notifications) != 1 || notes.Notifications[0].Type != "dataset_error" {
			t.Fatalf("notifications: %+v", notes)
		}
	})
}

// TestDatasetAPIBadInput: every bad request gets a 4xx naming the problem.
func TestDatasetAPIBadInput(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "x@example.com")
	ok := map[string]any{"name": "n", "file_name": "f.jsonl", "file_size": 10}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"empty name", with("name", "  "), "name"},
		{"long name", with("name", strings.Repeat("n", 201)), "name"},
		{"no file name", with("file_name", nil), "file_name"},
		{"zero size", with("file_size", 0), "file_size"},
		{"too large", with("file_size", 600<<20), "file_size"},
		{"unknown format", with("format", "csv"), "format"},
	} {
		r := c.Do("POST", "/api/datasets", tc.body)
		_, det := r.ErrorBody()
		if r.Status != 400 || det[tc.field] == nil {
			t.Errorf("%s: %d %s", tc.name, r.Status, r.Body)
		}
	}
	// A client-supplied file name can never choose the storage path.
	up := createDataset(t, c, "evil", "../../../"+"etc/passwd", 5)
	if strings.Contains(up.StoragePath, "..") || !strings.HasPrefix(up.StoragePath, c.UserID+"/"+up.Dataset.ID+"/") {
		t.Fatalf("storage path %q", up.StoragePath)
	}
	// Confirm before upload, then a short upload (declared size ≠ actual), then too long.
	if r := c.Do("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil); r.Status != 409 {
		t.Fatalf("confirm before upload: %d %s", r.Status, r.Body)
	}
	if res := putFile(t, up, bytes.NewReader([]byte("abc")), 3); res.StatusCode != 200 {
		t.Fatalf("short upload: %d", res.StatusCode)
	}
	if r := c.Do("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil); r.Status != 400 || !strings.Contains(string(r.Body), "3 bytes but 5 were declared") {
		t.Fatalf("size mismatch: %d %s", r.Status, r.Body)
	}
	if res := putFile(t, up, bytes.NewReader([]byte("0123456789")), 10); res.StatusCode != 413 {
		t.Fatalf("oversized upload: %d", res.StatusCode)
	}
	var renewed uploadView
	c.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/upload-url", nil, 200, &renewed)
	if renewed.UploadURL == "" || renewed.StoragePath != up.StoragePath {
		t.Fatalf("renew: %+v", renewed)
	}
	// Tampered upload URL.
	bad := up
	bad.UploadURL = strings.Replace(up.UploadURL, "sig=", "sig=0", 1)
	if res := putFile(t, bad, bytes.NewReader([]byte("12345")), 5); res.StatusCode != 403 {
		t.Fatalf("tampered URL: %d", res.StatusCode)
	}
	for _, q := range []string{"?limit=101", "?page=0", "?status=done", "?limit=x"} {
		if r := c.Do("GET", "/api/datasets"+q, nil); r.Status != 400 {
			t.Errorf("list %s: %d", q, r.Status)
		}
	}
	if r := c.Do("PATCH", "/api/datasets/"+up.Dataset.ID, map[string]any{}); r.Status != 400 {
		t.Errorf("empty patch: %d", r.Status)
	}
}

func TestDatasetListPatchDelete(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		c := s.SignUp(t, "l@example.com")
		var ids []string
		for i := 0; i < 7; i++ {
			ids = append(ids, createDataset(t, c, fmt.Sprintf("set %d", i), "a.json", 10).Dataset.ID)
		}
		var page struct {
			Datasets   []datasetView
			Total      int
			Page       int
			Limit      int
			TotalPages int `json:"totalPages"`
		}
		c.MustJSON("GET", "/api/datasets?page=2&limit=3&status=uploading", nil, 200, &page)
		if page.Total != 7 || page.TotalPages != 3 || len(page.Datasets) != 3 || page.Page != 2 {
			t.Fatalf("page: %+v", page)
		}
		c.MustJSON("GET", "/api/datasets?search=SET%205", nil, 200, &page)
		if page.Total != 1 {
			t.Fatalf("search: %d", page.Total)
		}
		var upd struct{ Dataset datasetView }
		c.MustJSON("PATCH", "/api/datasets/"+ids[0], map[string]string{"name": "renamed", "description": "d"}, 200, &upd)
		if upd.Dataset.Name != "renamed" {
			t.Fatalf("patch: %+v", upd)
		}
		// A dataset used by a queued job cannot be deleted (409 with the reason).
		insertJob(t, s, c.UserID, ids[1], "queued")
		if r := c.Do("DELETE", "/api/datasets/"+ids[1], nil); r.Status != 409 || !strings.Contains(string(r.Body), "queued or running") {
			t.Fatalf("delete in use: %d %s", r.Status, r.Body)
		}
		c.MustJSON("DELETE", "/api/datasets/"+ids[0], nil, 200, nil)
		if r := c.Do("GET", "/api/datasets/"+ids[0], nil); r.Status != 404 {
			t.Fatalf("deleted dataset: %d", r.Status)
		}
		c.MustJSON("GET", "/api/datasets", nil, 200, &page)
		if page.Total != 6 {
			t.Fatalf("after delete: %d", page.Total)
		}
	})
}

// TestDatasetValidationSurvivesCrash: a worker claims a dataset and dies
// (its lease is never renewed); the running server's worker picks the
// dataset up once the lease expires and finishes it.
func TestDatasetValidationSurvivesCrash(t *testing.T) {
	dir := testdata.Dir(t)
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{App: app.Options{DatasetWorker: &datasets.WorkerOptions{Poll: 200 * time.Millisecond, Lease: time.Second, Sweep: time.Hour}}})
	c := s.SignUp(t, "crash@example.com")
	b, _ := os.ReadFile(dir + "/" + testdata.EQ12JSONL)
	sys := store.AsSystem(context.Background())
	st := s.App.Store
	// The "crashed worker" claims a dataset first, straight through the
	// store, with a lease that is never renewed. The live worker polls every
	// 200 ms and may win the claim between the two store calls below; then
	// that dataset is simply validated, and the test tries a new one.
	var up uploadView
	for try := 1; ; try++ {
		up = createDataset(t, c, fmt.Sprintf("crash-%d", try), "eq.jsonl", int64(len(b)))
		putFile(t, up, bytes.NewReader(b), int64(len(b)))
		// Move to validating without waking the live worker, then claim.
		if _, err := st.DatasetStartValidation(store.WithUser(context.Background(), c.UserID), c.UserID, up.Dataset.ID, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		got, ok, err := st.DatasetClaimValidation(sys, time.Now().UTC(), 1500*time.Millisecond)
		if err != nil || (!ok && try == 5) {
			t.Fatalf("the simulated worker could not claim in %d tries: %v %v", try, ok, err)
		}
		if ok {
			if got.ID != up.Dataset.ID {
				t.Fatalf("the simulated worker claimed %s, want %s", got.ID, up.Dataset.ID)
			}
			break
		}
	}
	d := waitDataset(t, c, up.Dataset.ID)
	if d.Status != "ready" {
		t.Fatalf("after crash: %+v", d)
	}
	var full struct {
		Dataset struct {
			ValidationAttempts int `json:"validation_attempts"`
		}
	}
	c.MustJSON("GET", "/api/datasets/"+up.Dataset.ID, nil, 200, &full)
	if full.Dataset.ValidationAttempts != 2 {
		t.Fatalf("attempts %d", full.Dataset.ValidationAttempts)
	}
}

// insertJob adds a training job row straight in the database (the jobs API
// arrives with the training-configuration issue).
func insertJob(t *testing.T, s *testserver.Server, userID, datasetID, status string) {
	t.Helper()
	insertJobID(t, s, userID, datasetID, status)
}

func insertJobID(t *testing.T, s *testserver.Server, userID, datasetID, status string) string {
	t.Helper()
	id := uuid.NewString()
	db := s.App.Store.(*sqlstore.Store).DB()
	q := `INSERT INTO training_jobs (id, user_id, dataset_id, preset_id, hyperparameters, gpu_config, status, total_epochs, estimated_total_cost)
		VALUES (?, ?, ?, 'balanced', '{}', '{}', ?, 3, 1.0)`
	if s.App.Store.Engine() == "postgres" {
		q = `INSERT INTO training_jobs (id, user_id, dataset_id, preset_id, hyperparameters, gpu_config, status, total_epochs, estimated_total_cost)
		VALUES ($1, $2, $3, 'balanced', '{}', '{}', $4, 3, 1.0)`
	}
	if _, err := db.Exec(q, id, userID, datasetID, status); err != nil {
		t.Fatalf("insert job: %v", err)
	}
	return id
}
