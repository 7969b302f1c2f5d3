package openai

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
)

// Checkpoint is OpenAI's fine_tuning.job.checkpoint object.
type Checkpoint struct {
	ID                       string            `json:"id"`
	Object                   string            `json:"object"`
	CreatedAt                int64             `json:"created_at"`
	FineTunedModelCheckpoint string            `json:"fine_tuned_model_checkpoint"`
	FineTuningJobID          string            `json:"fine_tuning_job_id"`
	StepNumber               int               `json:"step_number"`
	Metrics                  CheckpointMetrics `json:"metrics"`
}

// CheckpointMetrics are what BrightRun measured at the step (the last
// values at or before it). full_valid_loss and full_valid_mean_token_accuracy
// are the final evaluation's, on the whole validation split (the final
// checkpoint only).
type CheckpointMetrics struct {
	Step                       float64  `json:"step"`
	TrainLoss                  *float64 `json:"train_loss"`
	TrainMeanTokenAccuracy     *float64 `json:"train_mean_token_accuracy"`
	ValidLoss                  *float64 `json:"valid_loss"`
	ValidMeanTokenAccuracy     *float64 `json:"valid_mean_token_accuracy"`
	FullValidLoss              *float64 `json:"full_valid_loss"`
	FullValidMeanTokenAccuracy *float64 `json:"full_valid_mean_token_accuracy"`
}

// jobCheckpoints are the servable checkpoints of a fine-tuning job: the
// final adapter (model set) once it succeeded, and the last checkpoint
// registered while training (its resume point) when it is an earlier step.
type jobCheckpoints struct {
	job        store.Job
	model      *store.Model
	final      int
	resume     *jobdoc.Checkpoint
	resumeTime time.Time
}

func (s *FineTuning) jobCheckpoints(ctx context.Context, userID string, f store.FineTuneJob) (jobCheckpoints, error) {
	var out jobCheckpoints
	if f.JobID == nil {
		return out, nil
	}
	tj, err := s.Store.JobGet(ctx, userID, *f.JobID)
	if err != nil {
		return out, err
	}
	out.job = tj
	if tj.ArtifactID != nil && tj.TotalSteps != nil {
		m, err := s.Store.ModelGet(ctx, userID, *tj.ArtifactID)
		if err != nil {
			return out, err
		}
		out.model, out.final = &m, *tj.TotalSteps
	}
	// The job's own row: system read, after JobGet proved ownership.
	e, err := s.Store.JobExec(store.AsSystem(ctx), tj.ID)
	if err != nil {
		return out, err
	}
	if cp := e.Checkpoint; cp != nil && cp.Step > 0 && (out.final == 0 || cp.Step < out.final) {
		out.resume, out.resumeTime = cp, derefTime(e.CheckpointAt, tj.UpdatedAt)
	}
	return out, nil
}

// checkpointModel is the fine_tuned_model_checkpoint of an intermediate step.
func checkpointModel(f store.FineTuneJob, tj store.Job, step int) string {
	label := tj.Name
	if label == "" {
		label = "checkpoint"
	}
	return CheckpointModelName(tj.BaseModel, f.Suffix, label, f.ID, step)
}

// Checkpoints lists a job's checkpoints newest first (see jobCheckpoints).
func (s *FineTuning) Checkpoints(ctx context.Context, userID, id, after string, limit int) (List[Checkpoint], error) {
	out := List[Checkpoint]{Object: "list", Data: []Checkpoint{}}
	f, err := s.get(ctx, userID, id)
	if err != nil || f.JobID == nil {
		return out, err
	}
	jc, err := s.jobCheckpoints(ctx, userID, f)
	if err != nil {
		return out, err
	}
	points, err := s.Store.MetricsList(ctx, userID, jc.job.ID, -1, maxEvents)
	if err != nil {
		return out, err
	}
	var all []Checkpoint
	if m := jc.model; m != nil {
		c := s.checkpoint(f, jc.final, FineTunedModelName(*m, f.Suffix), derefTime(jc.job.CompletedAt, jc.job.UpdatedAt), points)
		q := m.QualityMetrics
		c.Metrics.FullValidLoss, c.Metrics.FullValidMeanTokenAccuracy = q.FinalValidationLoss, q.FinalValidationMeanTokenAccuracy
		all = append(all, c)
	}
	if cp := jc.resume; cp != nil {
		all = append(all, s.checkpoint(f, cp.Step, checkpointModel(f, jc.job, cp.Step), jc.resumeTime, points))
	}
	return page(all, after, limit, func(c Checkpoint) string { return c.ID })
}

func (s *FineTuning) checkpoint(f store.FineTuneJob, step int, model string, at time.Time, points []store.MetricPoint) Checkpoint {
	c := Checkpoint{ID: CheckpointID(f.ID, step), Object: "fine_tuning.job.checkpoint", CreatedAt: at.Unix(),
		FineTunedModelCheckpoint: model, FineTuningJobID: JobID(f.ID), StepNumber: step, Metrics: CheckpointMetrics{Step: float64(step)}}
	for _, p := range points { // the last measured values at or before the step
		if p.Step > step {
			break
		}
		if p.TrainingLoss != nil {
			c.Metrics.TrainLoss, c.Metrics.TrainMeanTokenAccuracy = p.TrainingLoss, p.TrainMeanTokenAccuracy
		}
		if p.ValidationLoss != nil {
			c.Metrics.ValidLoss, c.Metrics.ValidMeanTokenAccuracy = p.ValidationLoss, p.ValidMeanTokenAccuracy
		}
	}
	return c
}

// CheckpointTarget resolves one of the user's checkpoints (by its ftckpt-
// id or its ft:…:ckpt-step-N model id, parsed into the job and step) to
// what chat generates with, and the time the checkpoint was made. Another
// user's, an unknown or a no longer kept checkpoint is not found.
func (s *FineTuning) CheckpointTarget(ctx context.Context, userID, ftID string, step int) (inference.Target, time.Time, error) {
	f, err := s.Store.FineTuneGet(ctx, userID, ftID)
	if err != nil {
		return inference.Target{}, time.Time{}, err
	}
	jc, err := s.jobCheckpoints(ctx, userID, f)
	if err != nil {
		return inference.Target{}, time.Time{}, err
	}
	switch {
	case jc.model != nil && step == jc.final:
		return inference.Target{BaseModel: jc.model.BaseModel, Model: jc.model}, jc.model.CreatedAt, nil
	case jc.resume != nil && step == jc.resume.Step:
		return inference.Target{BaseModel: jc.job.BaseModel, Checkpoint: &inference.CheckpointTarget{JobID: jc.job.ID, Step: step, SavedAt: jc.resumeTime, Files: jc.resume.Files}},
			jc.resumeTime, nil
	}
	return inference.Target{}, time.Time{}, apperr.NotFound("checkpoint")
}
