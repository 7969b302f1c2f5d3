package agentapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

// CompleteRequest reports a finished run and its uploaded files.
type CompleteRequest struct {
	Files   []StoredFile   `json:"files"`
	Summary map[string]any `json:"summary"`
	Eval    *EvalReport    `json:"eval"`
}

// EvalReport is the trainer's eval.json.
type EvalReport struct {
	Base    LossPPL `json:"base"`
	Adapter LossPPL `json:"adapter"`
	// SamplesFrom: "validation" (held-out prompts) or "train" (no
	// validation split was left).
	SamplesFrom *string          `json:"samples_from,omitempty"`
	Samples     []map[string]any `json:"samples"`
}

// LossPPL is one model's validation loss, perplexity and mean token
// accuracy (the share of assistant tokens whose argmax prediction is the
// label).
type LossPPL struct {
	ValidationLoss    *float64 `json:"validation_loss"`
	Perplexity        *float64 `json:"perplexity"`
	MeanTokenAccuracy *float64 `json:"mean_token_accuracy"`
}

func num(m map[string]any, k string) *float64 {
	if v, ok := m[k].(float64); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
		return &v
	}
	return nil
}

// Complete verifies the adapter files and finishes the job with its model
// artifact, cost record and notifications.
func (s *Service) Complete(ctx context.Context, j store.ExecJob, r CompleteRequest) (store.ExecJob, error) {
	files, err := s.verify(ctx, j, "final", 0, r.Files)
	if err != nil {
		return j, err
	}
	names := map[string]bool{}
	for _, f := range files {
		names[path.Base(f.Name)] = true
	}
	for _, need := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		if !names[need] {
			return j, apperr.Validation("the adapter is incomplete: "+need+" was not uploaded", map[string]string{"files": "include " + need})
		}
	}
	quality := map[string]any{}
	if r.Eval != nil {
		b, a := r.Eval.Base, r.Eval.Adapter
		quality["base_validation_loss"], quality["final_validation_loss"] = b.ValidationLoss, a.ValidationLoss
		quality["base_perplexity"], quality["adapter_perplexity"] = b.Perplexity, a.Perplexity
		if acc := a.MeanTokenAccuracy; acc != nil && *acc >= 0 && *acc <= 1 {
			quality["final_validation_mean_token_accuracy"] = *acc
		}
		if b.Perplexity != nil && a.Perplexity != nil && *b.Perplexity > 0 {
			quality["perplexity_improvement_pct"] = math.Round((*b.Perplexity-*a.Perplexity) / *b.Perplexity * 1000) / 10
		}
		quality["samples"] = len(r.Eval.Samples)
	}
	quality["final_training_loss"] = num(r.Summary, "final_training_loss")
	if pts, err := s.Store.MetricsList(store.WithUser(ctx, j.UserID), j.UserID, j.ID, -1, 1); err == nil && len(pts) > 0 && pts[0].TrainingLoss != nil {
		first := *pts[0].TrainingLoss
		quality["initial_training_loss"] = first
		if last := num(r.Summary, "final_training_loss"); last != nil && first > 0 {
			quality["loss_reduction_pct"] = math.Round((first-*last)/first*1000) / 10
		}
	}
	// Calibrate in the estimate's own token units, so the next estimate for
	// this GPU and model uses what this run really achieved.
	// An n-GPU run is stored divided by the assumed scaling efficiency, so
	// that per GPU (the calibration divides by num_gpus) it is the one-device
	// throughput the estimate multiplies by n × eff(n) (docs/estimates.md).
	used := worldSize(r.Summary)
	var measured, overhead *float64
	var est struct {
		TokensUsed int64 `json:"tokens_used"`
	}
	_ = json.Unmarshal(j.Estimate, &est)
	if secs := num(r.Summary, "train_seconds"); secs != nil && *secs > 0 && est.TokensUsed > 0 {
		v := float64(est.TokensUsed) / *secs / estimate.ScalingEfficiency(jobs.GPUsBilled(j.NumGPUs, used))
		measured = &v
		if j.AttemptStartedAt != nil && j.Attempt == 1 { // retries would add their lost time
			o := max(0, s.Now().UTC().Sub(*j.AttemptStartedAt).Seconds()-*secs)
			overhead = &o
		}
	}
	summary := map[string]any{}
	for k, v := range r.Summary {
		summary[k] = v
	}
	summary["attempts"], summary["retries"] = j.Attempt, j.RetryCount
	artifacts := map[string]any{"bucket": storage.BucketModels, "prefix": fmt.Sprintf("%s/%s/adapter/", j.UserID, j.ID), "files": files}
	if r.Eval != nil {
		artifacts["eval"] = r.Eval
	}
	config := map[string]any{"hyperparameters": j.Hyperparameters, "gpu_config": j.GPUConfig, "base_model": j.BaseModel, "preset_id": j.PresetID}
	qm, _ := json.Marshal(quality)
	ts, _ := json.Marshal(summary)
	cf, _ := json.Marshal(config)
	af, _ := json.Marshal(artifacts)
	name := truncate(fmt.Sprintf("%s · %s", j.DatasetName, shortModel(j.BaseModel)), 200)
	return s.Jobs.Complete(ctx, j, jobs.Completion{MeasuredTPS: measured, Overhead: overhead, Summary: completionMessage(quality), GPUsUsed: used,
		Artifact: store.ArtifactCreateParams{Name: name, QualityMetrics: qm, TrainingSummary: ts, Configuration: cf, Artifacts: af}})
}

// worldSize is the number of training processes the summary reports
// (summary.world_size; 0 when absent or not a whole number ≥ 1).
func worldSize(summary map[string]any) int {
	v := num(summary, "world_size")
	if v == nil || *v < 1 || *v != math.Trunc(*v) || *v > 1024 {
		return 0
	}
	return int(*v)
}

func shortModel(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return id[i+1:]
	}
	return id
}

func completionMessage(q map[string]any) string {
	if v, ok := q["final_validation_loss"].(*float64); ok && v != nil {
		msg := fmt.Sprintf("Validation loss %.3f", *v)
		if imp, ok := q["perplexity_improvement_pct"].(float64); ok {
			msg += fmt.Sprintf(", perplexity %.1f%% better than the base model", imp)
		}
		return msg + "."
	}
	return "The adapter is ready."
}
