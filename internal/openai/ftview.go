package openai

import (
	"context"

	"github.com/brightrun/brightrun/internal/store"
)

// Job is OpenAI's fine_tuning.job object.
type Job struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"`
	CreatedAt       int64             `json:"created_at"`
	FinishedAt      *int64            `json:"finished_at"`
	Model           string            `json:"model"`
	FineTunedModel  *string           `json:"fine_tuned_model"`
	OrganizationID  string            `json:"organization_id"`
	Status          string            `json:"status"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  *string           `json:"validation_file"`
	ResultFiles     []string          `json:"result_files"`
	TrainedTokens   *int64            `json:"trained_tokens"`
	EstimatedFinish *int64            `json:"estimated_finish"`
	Hyperparameters JobHyperparams    `json:"hyperparameters"`
	Method          JobMethod         `json:"method"`
	Error           *JobError         `json:"error"`
	Seed            int64             `json:"seed"`
	Suffix          *string           `json:"user_provided_suffix"`
	Metadata        map[string]string `json:"metadata"`
	Integrations    []any             `json:"integrations"`
}

// JobHyperparams are the resolved hyperparameters ("auto" is never shown
// once resolved).
type JobHyperparams struct {
	BatchSize              int     `json:"batch_size"`
	LearningRateMultiplier float64 `json:"learning_rate_multiplier"`
	NEpochs                int     `json:"n_epochs"`
}

// JobMethod is OpenAI's method as the job reports it.
type JobMethod struct {
	Type       string `json:"type"`
	Supervised struct {
		Hyperparameters JobHyperparams `json:"hyperparameters"`
	} `json:"supervised"`
}

// JobError is OpenAI's error of a failed job.
type JobError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
}

// Status maps a training job's status onto OpenAI's.
func Status(jobStatus string) string {
	switch jobStatus {
	case store.JobQueued:
		return "queued"
	case store.JobInitializing, store.JobRunning:
		return "running"
	case store.JobPaused:
		return "paused"
	case store.JobCompleted:
		return "succeeded"
	case store.JobFailed:
		return "failed"
	case store.JobCancelled:
		return "cancelled"
	}
	return jobStatus
}

func unix(t interface{ Unix() int64 }) *int64 {
	v := t.Unix()
	return &v
}

// view builds the job object from the fine-tuning row and, once it has
// one, its training job and model.
func (s *FineTuning) view(ctx context.Context, f store.FineTuneJob) (Job, error) {
	p := f.Request
	hp := JobHyperparams{BatchSize: p.BatchSize, LearningRateMultiplier: p.LearningRateMultiplier, NEpochs: p.NEpochs}
	j := Job{ID: JobID(f.ID), Object: "fine_tuning.job", CreatedAt: f.CreatedAt.Unix(), Model: f.Model, OrganizationID: "user-" + hexID(f.UserID),
		Status: f.Status, TrainingFile: FileID(f.TrainingFile), ResultFiles: []string{}, Hyperparameters: hp, Seed: f.Seed, Suffix: f.Suffix,
		Metadata: f.Metadata, Integrations: []any{}}
	j.Method.Type = "supervised"
	j.Method.Supervised.Hyperparameters = hp
	if f.ValidationFile != nil {
		v := FileID(*f.ValidationFile)
		j.ValidationFile = &v
	}
	if f.FinishedAt != nil {
		j.FinishedAt = unix(*f.FinishedAt)
	}
	if f.ErrorCode != nil {
		j.Error = &JobError{Code: *f.ErrorCode, Param: f.ErrorParam}
		if f.ErrorMessage != nil {
			j.Error.Message = *f.ErrorMessage
		}
	}
	if f.JobID == nil {
		return j, nil
	}
	tj, err := s.Store.JobGet(ctx, f.UserID, *f.JobID)
	if err != nil {
		return j, err
	}
	j.Status = Status(tj.Status)
	if tj.CompletedAt != nil {
		j.FinishedAt = unix(*tj.CompletedAt)
	}
	if tj.EstimatedCompletionAt != nil && (tj.Status == store.JobQueued || tj.Status == store.JobInitializing || tj.Status == store.JobRunning) {
		j.EstimatedFinish = unix(*tj.EstimatedCompletionAt)
	}
	if tj.Status == store.JobFailed {
		msg := "the job failed"
		if tj.ErrorMessage != nil {
			msg = *tj.ErrorMessage
		}
		j.Error = &JobError{Code: "training_failed", Message: msg}
	}
	if tj.ArtifactID != nil {
		j.ResultFiles = []string{resultFileID(f.ID)}
		if m, err := s.Store.ModelGet(ctx, f.UserID, *tj.ArtifactID); err == nil {
			name := FineTunedModelName(m, f.Suffix)
			j.FineTunedModel = &name
			j.TrainedTokens = m.TrainingSummary.TokensTrained
		}
	}
	return j, nil
}
