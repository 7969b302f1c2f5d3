package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/storage/s3store"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

type datasetView struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	Status               string            `json:"status"`
	Format               string            `json:"format"`
	StoragePath          string            `json:"storage_path"`
	TrainingReady        bool              `json:"training_ready"`
	TotalTrainingPairs   *int              `json:"total_training_pairs"`
	TotalValidationPairs *int              `json:"total_validation_pairs"`
	TotalTokens          *int64            `json:"total_tokens"`
	ErrorCount           int               `json:"error_count"`
	ValidationErrors     []validate.Issue  `json:"validation_errors"`
	ValidationWarnings   []validate.Issue  `json:"validation_warnings"`
	Statistics           *validate.Stats   `json:"statistics"`
	SampleData           []json.RawMessage `json:"sample_data"`
}

type uploadView struct {
	Dataset       datasetView       `json:"dataset"`
	UploadURL     string            `json:"uploadUrl"`
	UploadHeaders map[string]string `json:"uploadHeaders"`
	StoragePath   string            `json:"storagePath"`
}

// createDataset declares a dataset and returns the upload instructions.
func createDataset(t *testing.T, c *testserver.Client, name, fileName string, size int64) uploadView {
	t.Helper()
	var up uploadView
	c.MustJSON("POST", "/api/datasets", map[string]any{"name": name, "file_name": fileName, "file_size": size}, 201, &up)
	return up
}

// putFile streams body to the signed upload URL, as a browser does.
func putFile(t *testing.T, up uploadView, body io.Reader, size int64) *http.Response {
	t.Helper()
	req, err := http.NewRequest("PUT", up.UploadURL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for k, v := range up.UploadHeaders {
		if !strings.EqualFold(k, "Content-Length") {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT upload: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// uploadFile runs create → PUT → confirm and returns the dataset id.
func uploadFile(t *testing.T, c *testserver.Client, name, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return uploadBytes(t, c, name, path[strings.LastIndex(path, "/")+1:], b)
}

func uploadBytes(t *testing.T, c *testserver.Client, name, fileName string, b []byte) string {
	t.Helper()
	up := createDataset(t, c, name, fileName, int64(len(b)))
	if res := putFile(t, up, bytes.NewReader(b), int64(len(b))); res.StatusCode != 200 {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	c.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil, 200, nil)
	return up.Dataset.ID
}

// waitDataset polls until validation finishes.
func waitDataset(t *testing.T, c *testserver.Client, id string) datasetView {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var out struct {
			Dataset datasetView `json:"dataset"`
		}
		c.MustJSON("GET", "/api/datasets/"+id, nil, 200, &out)
		if out.Dataset.Status == "ready" || out.Dataset.Status == "error" {
			return out.Dataset
		}
		if time.Now().After(deadline) {
			t.Fatalf("dataset %s still %s", id, out.Dataset.Status)
		}
		// Real-time dependency: validation runs in the server's worker
		// goroutine and the API offers no push; poll it as the page does.
		time.Sleep(50 * time.Millisecond)
	}
}

// s3Env starts an S3-protocol server (gofakes3, in memory) with the two
// buckets and returns the settings that point BrightRun at it.
func s3Env(t *testing.T) map[string]string {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	st, err := s3store.New(context.Background(), s3store.Options{Endpoint: srv.URL, Region: "us-east-1", AccessKeyID: "AKIDTEST", SecretAccessKey: "secret-test", UsePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBuckets(context.Background()); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"BRIGHTRUN_STORAGE": "s3", "BRIGHTRUN_S3_ENDPOINT": srv.URL, "BRIGHTRUN_S3_ACCESS_KEY_ID": "AKIDTEST",
		"BRIGHTRUN_S3_SECRET_ACCESS_KEY": "secret-test"}
}
