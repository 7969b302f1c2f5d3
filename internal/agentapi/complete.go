package agentapi

import (
	"context"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

// CompleteRequest reports a finished run and its uploaded files.
type CompleteRequest struct {
	Files   []jobdoc.File  `json:"files"`
	Summary jobdoc.Summary `json:"summary"`
	Eval    *jobdoc.Eval   `json:"eval"`
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
	quality := s.quality(ctx, j, r)
	// Calibrate in the estimate's own token units, so the next estimate for
	// this GPU and model uses what this run really achieved.
	// An n-GPU run is stored divided by the assumed scaling efficiency, so
	// that per GPU (the calibration divides by num_gpus) it is the one-device
	// throughput the estimate multiplies by n × eff(n) (docs/estimates.md).
	used := r.Summary.WorldSizeOrZero()
	var measured, overhead *float64
	var tokens int64 // the estimate's token count (none: no calibration)
	if j.Estimate != nil {
		tokens = j.Estimate.TokensUsed
	}
	if secs := jobdoc.Finite(r.Summary.TrainSeconds); secs != nil && *secs > 0 && tokens > 0 {
		v := float64(tokens) / *secs / estimate.ScalingEfficiency(jobs.GPUsBilled(j.NumGPUs, used))
		measured = &v
		if j.AttemptStartedAt != nil && j.Attempt == 1 { // retries would add their lost time
			o := max(0, s.Now().UTC().Sub(*j.AttemptStartedAt).Seconds()-*secs)
			overhead = &o
		}
	}
	summary := r.Summary
	attempts, retries := j.Attempt, j.RetryCount
	summary.Attempts, summary.Retries = &attempts, &retries
	artifacts := jobdoc.Artifacts{Bucket: storage.BucketModels, Prefix: fmt.Sprintf("%s/%s/adapter/", j.UserID, j.ID), Files: files, Eval: r.Eval}
	config := jobdoc.Configuration{Hyperparameters: j.Hyperparameters, GPUConfig: j.GPUConfig, BaseModel: j.BaseModel, PresetID: j.PresetID}
	name := truncate(fmt.Sprintf("%s · %s", j.DatasetName, shortModel(j.BaseModel)), 200)
	return s.Jobs.Complete(ctx, j, jobs.Completion{MeasuredTPS: measured, Overhead: overhead, Summary: completionMessage(quality), GPUsUsed: used,
		Artifact: store.ArtifactCreateParams{Name: name, QualityMetrics: quality, TrainingSummary: summary, Configuration: config, Artifacts: artifacts}})
}

// quality computes the model's quality metrics from the evaluation and the
// loss curve (its first training loss).
func (s *Service) quality(ctx context.Context, j store.ExecJob, r CompleteRequest) jobdoc.Quality {
	q := jobdoc.Quality{FinalTrainingLoss: jobdoc.Finite(r.Summary.FinalTrainingLoss)}
	if r.Eval != nil {
		b, a := r.Eval.Base, r.Eval.Adapter
		q.BaseValidationLoss, q.FinalValidationLoss = jobdoc.Finite(b.ValidationLoss), jobdoc.Finite(a.ValidationLoss)
		q.BasePerplexity, q.AdapterPerplexity = jobdoc.Finite(b.Perplexity), jobdoc.Finite(a.Perplexity)
		if acc := jobdoc.Finite(a.MeanTokenAccuracy); acc != nil && *acc >= 0 && *acc <= 1 {
			q.FinalValidationMeanTokenAccuracy = acc
		}
		if bp, ap := q.BasePerplexity, q.AdapterPerplexity; bp != nil && ap != nil && *bp > 0 {
			v := math.Round((*bp-*ap) / *bp * 1000) / 10
			q.PerplexityImprovementPct = &v
		}
		n := len(r.Eval.Samples)
		q.Samples = &n
	}
	if pts, err := s.Store.MetricsList(store.WithUser(ctx, j.UserID), j.UserID, j.ID, -1, 1); err == nil && len(pts) > 0 && pts[0].TrainingLoss != nil {
		first := *pts[0].TrainingLoss
		q.InitialTrainingLoss = &first
		if last := q.FinalTrainingLoss; last != nil && first > 0 {
			v := math.Round((first-*last)/first*1000) / 10
			q.LossReductionPct = &v
		}
	}
	return q
}

func shortModel(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return id[i+1:]
	}
	return id
}

func completionMessage(q jobdoc.Quality) string {
	if v := q.FinalValidationLoss; v != nil {
		msg := fmt.Sprintf("Validation loss %.3f", *v)
		if imp := q.PerplexityImprovementPct; imp != nil {
			msg += fmt.Sprintf(", perplexity %.1f%% better than the base model", *imp)
		}
		return msg + "."
	}
	return "The adapter is ready."
}
