package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
)

type catalogView struct {
	Presets []struct {
		ID              string         `json:"id"`
		Hyperparameters map[string]any `json:"hyperparameters"`
	} `json:"presets"`
	BaseModels []struct {
		ID    string `json:"id"`
		Local bool   `json:"local"`
	} `json:"base_models"`
	GPUs []struct {
		ID             string  `json:"id"`
		GPUType        string  `json:"gpu_type"`
		CostPerGPUHour float64 `json:"cost_per_gpu_hour"`
		MemoryGB       float64 `json:"memory_gb"`
		CPU            bool    `json:"cpu"`
	} `json:"gpus"`
}

type estimateView struct {
	EstimatedCost          float64            `json:"estimated_cost"`
	EstimatedDurationHours float64            `json:"estimated_duration_hours"`
	CostBreakdown          map[string]float64 `json:"cost_breakdown"`
	GPUHours               float64            `json:"gpu_hours"`
	TokensUsed             int64              `json:"tokens_used"`
	Basis                  string             `json:"basis"`
	Memory                 struct {
		Fits         bool    `json:"fits"`
		MaxBatchSize int     `json:"max_batch_size"`
		Warning      string  `json:"warning"`
		RequiredGB   float64 `json:"required_gb"`
	} `json:"memory"`
	CostRange struct{ Low, High float64 } `json:"cost_range"`
	Checklist []struct {
		ID      string
		OK      bool
		Message string
	} `json:"checklist"`
}

const smol = "HuggingFaceTB/SmolLM2-135M-Instruct"
const mistral = "mistralai/Mistral-7B-v0.1"

func jobReq(dataset, model, gpu string, n int, mod func(h map[string]any)) map[string]any {
	h := map[string]any{"base_model": model}
	switch model {
	case smol:
		h["batch_size"] = 1 // the CPU demo's 16 GB budget (measured: batch 2 of EQ-12 peaks at 13 GB RSS)
	case mistral:
		h["batch_size"] = 2 // Mistral-7B with ~1.4k-token examples on 80 GB (docs/estimates.md)
	}
	if mod != nil {
		mod(h)
	}
	return map[string]any{"dataset_id": dataset, "preset_id": "balanced", "hyperparameters": h, "gpu_config": map[string]any{"gpu_type": gpu, "num_gpus": n}}
}

func readyDataset(t *testing.T, c *testserver.Client) string {
	id := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	if d := waitDataset(t, c, id); d.Status != "ready" {
		t.Fatalf("dataset not ready: %+v", d)
	}
	return id
}

func TestCatalogAndEstimates(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "est@example.com")
	var cat catalogView
	c.MustJSON("GET", "/api/catalog", nil, 200, &cat)
	want := map[string][]float64{ // lr, batch, epochs, rank, alpha, dropout (the spec's presets)
		"conservative": {0.0001, 4, 3, 8, 16, 0.05}, "balanced": {0.0002, 8, 5, 16, 32, 0.1},
		"aggressive": {0.0003, 16, 10, 32, 64, 0.1}, "custom": {0.0002, 8, 5, 16, 32, 0.1},
		"quick-demo-cpu": {0.0005, 4, 1, 8, 16, 0}, // issue 14's CPU quick start, on the local demo model
	}
	if len(cat.Presets) != 5 {
		t.Fatalf("presets: %+v", cat.Presets)
	}
	for _, p := range cat.Presets {
		w := want[p.ID]
		h := p.Hyperparameters
		got := []float64{h["learning_rate"].(float64), h["batch_size"].(float64), h["num_epochs"].(float64), h["lora_rank"].(float64), h["lora_alpha"].(float64), h["lora_dropout"].(float64)}
		wantModel := mistral
		if p.ID == "quick-demo-cpu" {
			wantModel = "HuggingFaceTB/SmolLM2-135M-Instruct"
		}
		if fmt.Sprint(got) != fmt.Sprint(w) || h["base_model"] != wantModel {
			t.Errorf("preset %s: %v want %v", p.ID, got, w)
		}
	}
	var cpu, big string
	var bigPrice float64
	for _, g := range cat.GPUs {
		if g.CPU {
			cpu = g.ID
			if g.CostPerGPUHour != 0 {
				t.Errorf("CPU (local) must be free: %v", g.CostPerGPUHour)
			}
		}
		if g.MemoryGB >= 80 && big == "" {
			big, bigPrice = g.ID, g.CostPerGPUHour
		}
	}
	if cpu == "" || big == "" {
		t.Fatalf("GPU catalog lacks CPU or an 80 GB GPU: %+v", cat.GPUs)
	}
	ds := readyDataset(t, c)

	var e estimateView
	c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, smol, cpu, 1, nil), 200, &e)
	if !e.Memory.Fits || e.CostBreakdown["compute"] != 0 || e.EstimatedCost > 0.01 || e.EstimatedDurationHours <= 0 || e.TokensUsed <= 0 {
		t.Fatalf("SmolLM2 on CPU: %+v", e)
	}
	var e7 estimateView
	c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, mistral, big, 1, nil), 200, &e7)
	if !e7.Memory.Fits || e7.EstimatedCost <= 0 || e7.CostBreakdown["compute"] <= 0 || e7.CostRange.Low > e7.EstimatedCost || e7.CostRange.High < e7.EstimatedCost {
		t.Fatalf("Mistral on 80 GB: %+v", e7)
	}
	var more estimateView
	c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, mistral, big, 1, func(h map[string]any) { h["num_epochs"] = 10 }), 200, &more)
	if more.EstimatedDurationHours <= e7.EstimatedDurationHours || more.TokensUsed != 2*e7.TokensUsed {
		t.Fatalf("10 epochs vs 5: %+v vs %+v", more, e7)
	}
	var cpu7 estimateView
	c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, mistral, cpu, 1, nil), 200, &cpu7)
	if cpu7.Memory.Fits || cpu7.Memory.Warning == "" {
		t.Fatalf("Mistral-7B must not fit the local CPU budget: %+v", cpu7.Memory)
	}
	// Prices come from the catalog, never from the client.
	r := c.Do("POST", "/api/jobs/estimate", map[string]any{"dataset_id": ds, "preset_id": "balanced", "hyperparameters": map[string]any{"base_model": mistral},
		"gpu_config": map[string]any{"gpu_type": big, "num_gpus": 1, "cost_per_gpu_hour": 0.01}})
	if _, det := r.ErrorBody(); r.Status != 400 || det["gpu_config.cost_per_gpu_hour"] == nil {
		t.Fatalf("client price: %d %s", r.Status, r.Body)
	}
	c.MustJSON("POST", "/api/jobs/estimate", map[string]any{"dataset_id": ds, "preset_id": "balanced", "hyperparameters": map[string]any{"base_model": mistral},
		"gpu_config": map[string]any{"gpu_type": big, "num_gpus": 1, "cost_per_gpu_hour": bigPrice}}, 200, nil)
	// Every out-of-range field is named with its allowed range.
	for field, v := range map[string]any{"learning_rate": 0.5, "num_epochs": 51, "batch_size": 0, "lora_rank": 300, "lora_alpha": 600, "lora_dropout": 0.7, "max_seq_length": 10} {
		r := c.Do("POST", "/api/jobs/estimate", jobReq(ds, smol, cpu, 1, func(h map[string]any) { h[field] = v }))
		msg, det := r.ErrorBody()
		if r.Status != 400 || det["hyperparameters."+field] == nil {
			t.Errorf("%s=%v: %d %s %v", field, v, r.Status, msg, det)
		}
	}
	for name, req := range map[string]map[string]any{
		"unknown model":  jobReq(ds, "gpt2-xl", cpu, 1, nil),
		"unknown gpu":    jobReq(ds, smol, "TPU-v9", 1, nil),
		"too many gpus":  jobReq(ds, mistral, big, 9, nil),
		"unknown preset": {"dataset_id": ds, "preset_id": "turbo", "hyperparameters": map[string]any{}, "gpu_config": map[string]any{"gpu_type": cpu}},
	} {
		if r := c.Do("POST", "/api/jobs/estimate", req); r.Status != 400 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
}

func TestJobsCreateListCancelBudget(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		c := s.SignUp(t, "jobs@example.com")
		other := s.SignUp(t, "other@example.com")
		var cat catalogView
		c.MustJSON("GET", "/api/catalog", nil, 200, &cat)
		var cpu, big string
		for _, g := range cat.GPUs {
			if g.CPU {
				cpu = g.ID
			} else if g.MemoryGB >= 80 && big == "" {
				big = g.ID
			}
		}
		ds := readyDataset(t, c)
		var created struct {
			Job struct {
				ID, Status, GPUType string
				EstimatedTotalCost  float64 `json:"estimated_total_cost"`
			} `json:"job"`
			EstimatedCost float64 `json:"estimated_cost"`
		}
		c.MustJSON("POST", "/api/jobs", jobReq(ds, smol, cpu, 1, nil), 201, &created)
		if created.Job.Status != "queued" {
			t.Fatalf("created: %+v", created)
		}
		// Not-ready and other users' datasets are refused.
		pending := createDataset(t, c, "pending", "p.jsonl", 10).Dataset.ID
		if r := c.Do("POST", "/api/jobs", jobReq(pending, smol, cpu, 1, nil)); r.Status != 409 || !strings.Contains(string(r.Body), "not ready") {
			t.Fatalf("not-ready dataset: %d %s", r.Status, r.Body)
		}
		if r := other.Do("POST", "/api/jobs", jobReq(ds, smol, cpu, 1, nil)); r.Status != 404 {
			t.Fatalf("other user's dataset: %d %s", r.Status, r.Body)
		}
		if r := c.Do("POST", "/api/jobs", jobReq(ds, mistral, cpu, 1, nil)); r.Status != 400 || !strings.Contains(string(r.Body), "memory") {
			t.Fatalf("job that cannot fit: %d %s", r.Status, r.Body)
		}
		var list struct {
			Jobs    []struct{ ID, Status string }
			Total   int
			Summary struct{ Active int }
		}
		c.MustJSON("GET", "/api/jobs?status=queued", nil, 200, &list)
		if list.Total != 1 || list.Summary.Active != 1 || list.Jobs[0].ID != created.Job.ID {
			t.Fatalf("list: %+v", list)
		}
		c.MustJSON("GET", "/api/jobs/"+created.Job.ID, nil, 200, nil)
		// The dataset of a queued job cannot be deleted.
		if r := c.Do("DELETE", "/api/datasets/"+ds, nil); r.Status != 409 {
			t.Fatalf("delete dataset of queued job: %d", r.Status)
		}
		var cancelled struct{ Job struct{ Status string } }
		c.MustJSON("POST", "/api/jobs/"+created.Job.ID+"/cancel", nil, 200, &cancelled)
		if cancelled.Job.Status != "cancelled" {
			t.Fatalf("cancel queued: %+v", cancelled)
		}
		if r := c.Do("POST", "/api/jobs/"+created.Job.ID+"/cancel", nil); r.Status != 409 {
			t.Fatalf("cancel twice: %d", r.Status)
		}
		var notes struct{ Notifications []struct{ Type string } }
		c.MustJSON("GET", "/api/notifications", nil, 200, &notes)
		if notes.Notifications[0].Type != "job_cancelled" {
			t.Fatalf("notifications: %+v", notes)
		}
		// Budget: a job whose estimate exceeds what is left is refused with the numbers.
		c.MustJSON("PUT", "/api/settings/budget", map[string]any{"monthly_budget": 0.05}, 200, nil)
		r := c.Do("POST", "/api/jobs", jobReq(ds, mistral, big, 1, nil))
		if r.Status != 409 || !strings.Contains(string(r.Body), "monthly budget") || !strings.Contains(string(r.Body), "$0.05 budget") {
			t.Fatalf("over budget: %d %s", r.Status, r.Body)
		}
		var est estimateView
		c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, mistral, big, 1, nil), 200, &est)
		for _, ch := range est.Checklist {
			if ch.ID == "within_budget" && ch.OK {
				t.Fatal("checklist says within budget")
			}
		}
		c.MustJSON("POST", "/api/jobs", jobReq(ds, smol, cpu, 1, nil), 201, nil) // free CPU job still fits
		c.MustJSON("PUT", "/api/settings/budget", map[string]any{"monthly_budget": 0.05, "hard_stop": false}, 200, nil)
		c.MustJSON("POST", "/api/jobs", jobReq(ds, mistral, big, 1, nil), 201, nil)
		// Committed now exceeds the budget: even a free job is not "within budget".
		var over estimateView
		c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, smol, cpu, 1, nil), 200, &over)
		for _, ch := range over.Checklist {
			if ch.ID == "within_budget" && (ch.OK || !strings.Contains(ch.Message, "already exceed")) {
				t.Fatalf("spent+committed over budget, free job: %+v", ch)
			}
		}
		if r := c.Do("PUT", "/api/settings/budget", map[string]any{"monthly_budget": -1}); r.Status != 400 {
			t.Fatalf("negative budget: %d", r.Status)
		}
	})
}
