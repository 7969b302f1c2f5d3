package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
)

// Statuses of a fine-tuning job row of the OpenAI face before (or instead
// of) its training job: once created, the training job's status rules.
const (
	FineTuneValidatingFiles = "validating_files"
	FineTuneCreated         = "created"
	FineTuneFailed          = "failed"
	FineTuneCancelled       = "cancelled"
)

// FineTuneJob is a fine-tuning job created through /v1
// (openai_fine_tuning_jobs). Request is the resolved request (the plan its
// training job is created with); JobID is set once the training job exists.
type FineTuneJob struct {
	ID             string
	UserID         string
	JobID          *string
	Model          string
	TrainingFile   string // dataset id
	ValidationFile *string
	Suffix         *string
	Seed           int64
	Metadata       map[string]string
	Request        jobdoc.FineTunePlan
	Status         string
	ErrorCode      *string
	ErrorMessage   *string
	ErrorParam     *string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     *time.Time
}

// FineTuneListParams page a user's fine-tuning jobs newest first; After is
// the id of the last job of the previous page.
type FineTuneListParams struct {
	UserID string
	After  string
	Limit  int
}

// FineTuneResolve records what became of a validating_files job: Status
// created with JobID, or failed/cancelled with the error.
type FineTuneResolve struct {
	ID                             string
	Status                         string
	JobID                          *string
	ErrorCode, ErrorMessage, Param string
	At                             time.Time
}

// FineTuneStore persists the /v1 fine-tuning jobs. User methods take the
// owner's id; the system methods serve the worker that waits for files.
type FineTuneStore interface {
	FineTuneCreate(ctx context.Context, j FineTuneJob) (FineTuneJob, error)
	FineTuneGet(ctx context.Context, userID, id string) (FineTuneJob, error)
	FineTuneByJob(ctx context.Context, userID, jobID string) (FineTuneJob, error)
	FineTuneList(ctx context.Context, p FineTuneListParams) ([]FineTuneJob, error)
	// FineTuneResolve moves a validating_files row on; it reports false when
	// the row had already moved on (another worker, a cancel).
	FineTuneResolve(ctx context.Context, p FineTuneResolve) (bool, error)
	// FineTunePending lists validating_files rows of every user (system).
	FineTunePending(ctx context.Context, limit int) ([]FineTuneJob, error)
}
