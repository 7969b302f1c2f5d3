package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

type v1Job struct {
	ID, Status, Model string
	Hyperparameters   struct {
		NEpochs                int     `json:"n_epochs"`
		BatchSize              int     `json:"batch_size"`
		LearningRateMultiplier float64 `json:"learning_rate_multiplier"`
	}
	Error *struct{ Code, Message, Param string }
}

type v1Error struct {
	Error struct {
		Message, Type string
		Param, Code   *string
	}
}

func v1Do(t *testing.T, c *testserver.Client, method, path string, body any, status int, out any) {
	t.Helper()
	r := c.Do(method, path, body)
	if r.Status != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, r.Body)
		}
	}
}

// TestOpenAIFineTuningWaitsForFiles (no trainer needed, both engines): a
// job created while its file is still uploading waits in validating_files
// and becomes a queued training job with the asked hyperparameters once the
// file is valid; a job over a hard monthly budget is refused as on /api;
// a base model that does not fit the cheapest GPU gets a smaller "auto"
// batch size on a GPU it fits.
func TestOpenAIFineTuningWaitsForFiles(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		c := s.SignUp(t, "v1wait@example.com")
		b, err := os.ReadFile(chatJSONL(t, 16))
		if err != nil {
			t.Fatal(err)
		}
		up := createDataset(t, c, "late", "late.jsonl", int64(len(b)))
		file := "file-" + strings.ReplaceAll(up.Dataset.ID, "-", "")
		var j v1Job
		v1Do(t, c, "POST", "/v1/fine_tuning/jobs", map[string]any{"model": smol, "training_file": file, "hyperparameters": map[string]any{"n_epochs": 2}}, 200, &j)
		if j.Status != "validating_files" || j.Hyperparameters.NEpochs != 2 {
			t.Fatalf("created: %+v", j)
		}
		if res := putFile(t, up, bytes.NewReader(b), int64(len(b))); res.StatusCode != 200 {
			t.Fatalf("upload: %d", res.StatusCode)
		}
		c.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil, 200, nil)
		deadline := time.Now().Add(time.Minute)
		for j.Status == "validating_files" && time.Now().Before(deadline) {
			// Real-time dependency: the validation worker runs on its own schedule.
			time.Sleep(50 * time.Millisecond)
			v1Do(t, c, "GET", "/v1/fine_tuning/jobs/"+j.ID, nil, 200, &j)
		}
		if j.Status != "queued" || j.Error != nil {
			t.Fatalf("after the file validated: %+v", j)
		}
		var jobs struct {
			Jobs []struct {
				Status          string
				TotalEpochs     int             `json:"total_epochs"`
				GPUType         string          `json:"gpu_type"`
				Hyperparameters json.RawMessage `json:"hyperparameters"`
			}
		}
		c.MustJSON("GET", "/api/jobs", nil, 200, &jobs)
		if len(jobs.Jobs) != 1 || jobs.Jobs[0].TotalEpochs != 2 || jobs.Jobs[0].Status != "queued" || jobs.Jobs[0].GPUType != "CPU" {
			t.Fatalf("the training job: %+v", jobs.Jobs)
		}
		var ev struct {
			Data []struct{ Message string }
		}
		v1Do(t, c, "GET", "/v1/fine_tuning/jobs/"+j.ID+"/events", nil, 200, &ev)
		if len(ev.Data) < 2 || !strings.Contains(ev.Data[0].Message, "Files validated") {
			t.Fatalf("events: %+v", ev.Data)
		}

		// A 7B model: "auto" batch size is lowered until it fits a GPU; a
		// hard budget refuses the job as /api does.
		v1Do(t, c, "POST", "/v1/fine_tuning/jobs", map[string]any{"model": "mistralai/Mistral-7B-v0.1", "training_file": file,
			"hyperparameters": map[string]any{"n_epochs": 1}, "metadata": map[string]string{"size": "7b"}}, 200, &j)
		if j.Status != "queued" || j.Hyperparameters.BatchSize < 1 || j.Hyperparameters.BatchSize > 8 {
			t.Fatalf("7B job: %+v", j)
		}
		var list struct {
			Data    []v1Job
			HasMore bool `json:"has_more"`
		}
		v1Do(t, c, "GET", "/v1/fine_tuning/jobs?metadata[size]=7b", nil, 200, &list)
		if len(list.Data) != 1 || list.Data[0].ID != j.ID || list.HasMore {
			t.Fatalf("list by metadata: %+v", list)
		}
		c.MustJSON("PUT", "/api/settings/budget", map[string]any{"monthly_budget": 0.01, "hard_stop": true}, 200, nil)
		var ve v1Error
		v1Do(t, c, "POST", "/v1/fine_tuning/jobs", map[string]any{"model": "mistralai/Mistral-7B-v0.1", "training_file": file}, 409, &ve)
		if ve.Error.Type == "" || !strings.Contains(ve.Error.Message, "budget") {
			t.Fatalf("over budget: %+v", ve)
		}
		v1Do(t, c, "GET", "/v1/fine_tuning/jobs?limit=0", nil, 400, &ve)
		if ve.Error.Param == nil || *ve.Error.Param != "limit" {
			t.Fatalf("limit 0: %+v", ve)
		}
		v1Do(t, c, "GET", "/v1/files?order=sideways", nil, 400, &ve)
		if ve.Error.Param == nil || *ve.Error.Param != "order" {
			t.Fatalf("order: %+v", ve)
		}
		// Another user's file as validation_file (on /v1 and, as the
		// hyperparameter it becomes, on /api) is as unknown as a made-up id.
		o := s.SignUp(t, "v1wait-other@example.com")
		oup := createDataset(t, o, "mine", "mine.jsonl", 10)
		ofile := "file-" + strings.ReplaceAll(oup.Dataset.ID, "-", "")
		v1Do(t, o, "POST", "/v1/fine_tuning/jobs", map[string]any{"model": smol, "training_file": ofile, "validation_file": file}, 400, &ve)
		if ve.Error.Param == nil || *ve.Error.Param != "validation_file" {
			t.Fatalf("another user's validation file: %+v", ve)
		}
		r := o.Do("POST", "/api/jobs/estimate", map[string]any{"dataset_id": oup.Dataset.ID, "preset_id": "custom", "gpu_config": map[string]any{"gpu_type": "cpu-local"},
			"hyperparameters": map[string]any{"base_model": smol, "validation_dataset_id": up.Dataset.ID}})
		if msg, details := r.ErrorBody(); r.Status != 400 || details["hyperparameters.validation_dataset_id"] == nil {
			t.Fatalf("/api with another user's validation dataset: %d %s %v", r.Status, msg, details)
		}
		v1Do(t, c, "POST", "/v1/fine_tuning/jobs/"+j.ID+"/resume", nil, 409, &ve)
		v1Do(t, c, "DELETE", "/v1/files/"+file, nil, 409, &ve) // queued jobs use it
	})
}

// TestEstimateWithValidationFile (no trainer needed): a job with a separate
// validation dataset (/v1's validation_file) is estimated with the whole
// training dataset training (no held-out share taken out) and the
// validation dataset's tokens for the evaluation passes; the /v1 job's
// training job carries that estimate.
func TestEstimateWithValidationFile(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "v1est@example.com")
	train := uploadFile(t, c, "train", chatJSONL(t, 40))
	val := uploadBytes(t, c, "val", "val.jsonl", mustRead(t, chatJSONL(t, 5)))
	for _, id := range []string{train, val} {
		if d := waitDataset(t, c, id); d.Status != "ready" {
			t.Fatalf("dataset not ready: %+v", d)
		}
	}
	type est struct {
		estimateView
		Dataset struct {
			TrainExamples       int    `json:"train_examples"`
			EvalExamples        int    `json:"eval_examples"`
			TrainTokens         int64  `json:"train_tokens"`
			EvalTokens          int64  `json:"eval_tokens"`
			ValidationDatasetID string `json:"validation_dataset_id"`
		} `json:"dataset"`
	}
	req := func(dataset, validation string) map[string]any {
		return jobReq(dataset, smol, "cpu-local", 1, func(h map[string]any) {
			h["num_epochs"] = 1
			if validation != "" {
				h["validation_dataset_id"] = validation
			}
		})
	}
	var plain, withVal, valAlone est
	c.MustJSON("POST", "/api/jobs/estimate", req(train, ""), 200, &plain)
	c.MustJSON("POST", "/api/jobs/estimate", req(train, val), 200, &withVal)
	c.MustJSON("POST", "/api/jobs/estimate", req(val, ""), 200, &valAlone)
	p, w, v := plain.Dataset, withVal.Dataset, valAlone.Dataset
	if p.EvalExamples < 1 || p.TrainExamples+p.EvalExamples != 40 || p.ValidationDatasetID != "" {
		t.Fatalf("without a validation dataset, a held-out share: %+v", p)
	}
	if w.TrainExamples != 40 || w.TrainTokens != p.TrainTokens+p.EvalTokens || w.ValidationDatasetID != val {
		t.Fatalf("with a validation dataset the whole dataset trains: %+v (without: %+v)", w, p)
	}
	if w.EvalExamples != 5 || w.EvalTokens != v.TrainTokens+v.EvalTokens || w.EvalTokens <= 0 {
		t.Fatalf("the validation dataset's tokens are evaluated: %+v (it alone: %+v)", w, v)
	}
	if withVal.TokensUsed <= plain.TokensUsed {
		t.Fatalf("tokens used: %d with the validation dataset, %d without", withVal.TokensUsed, plain.TokensUsed)
	}
	found := false
	for _, item := range withVal.Checklist {
		found = found || strings.Contains(item.Message, "validation dataset")
	}
	if !found {
		t.Fatalf("the checklist does not say the validation dataset is used: %+v", withVal.Checklist)
	}

	// The same through /v1: the training job of a job with validation_file
	// was priced with these figures.
	var j v1Job
	v1Do(t, c, "POST", "/v1/fine_tuning/jobs", map[string]any{"model": smol, "training_file": "file-" + strings.ReplaceAll(train, "-", ""),
		"validation_file": "file-" + strings.ReplaceAll(val, "-", ""), "hyperparameters": map[string]any{"n_epochs": 1, "batch_size": 1}}, 200, &j)
	var jobs struct {
		Jobs []struct {
			ID string
		}
	}
	c.MustJSON("GET", "/api/jobs", nil, 200, &jobs)
	if len(jobs.Jobs) != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	e, err := s.App.Store.JobExec(store.AsSystem(context.Background()), jobs.Jobs[0].ID)
	if err != nil || e.Estimate == nil || e.Estimate.TokensUsed != withVal.TokensUsed {
		t.Fatalf("the /v1 job's estimate: %v %+v (want tokens_used %d)", err, e.Estimate, withVal.TokensUsed)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
