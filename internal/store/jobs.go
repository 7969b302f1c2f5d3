package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

// Job statuses (spec).
const (
	JobQueued       = "queued"
	JobInitializing = "initializing"
	JobRunning      = "running"
	JobCompleted    = "completed"
	JobFailed       = "failed"
	JobCancelled    = "cancelled"
)

// JobActive lists the statuses of jobs that still hold resources.
var JobActive = []string{JobQueued, JobInitializing, JobRunning, JobPaused}

// Job is a row of the spec's training_jobs table plus configuration extras.
type Job struct {
	ID                    string                  `json:"id"`
	UserID                string                  `json:"user_id"`
	DatasetID             string                  `json:"dataset_id"`
	PresetID              string                  `json:"preset_id"`
	Hyperparameters       catalog.Hyperparameters `json:"hyperparameters"`
	GPUConfig             jobdoc.GPUConfig        `json:"gpu_config"`
	Status                string                  `json:"status"`
	CurrentStage          string                  `json:"current_stage"`
	Progress              float64                 `json:"progress"`
	CurrentEpoch          int                     `json:"current_epoch"`
	TotalEpochs           int                     `json:"total_epochs"`
	CurrentStep           int                     `json:"current_step"`
	TotalSteps            *int                    `json:"total_steps"`
	CurrentMetrics        *jobdoc.Metrics         `json:"current_metrics"` // nil until the first metrics
	QueuedAt              time.Time               `json:"queued_at"`
	StartedAt             *time.Time              `json:"started_at"`
	CompletedAt           *time.Time              `json:"completed_at"`
	EstimatedCompletionAt *time.Time              `json:"estimated_completion_at"`
	CurrentCost           float64                 `json:"current_cost"`
	EstimatedTotalCost    float64                 `json:"estimated_total_cost"`
	FinalCost             *float64                `json:"final_cost"`
	ErrorMessage          *string                 `json:"error_message"`
	ErrorStack            *string                 `json:"error_stack"`
	RetryCount            int                     `json:"retry_count"`
	ExternalJobID         *string                 `json:"external_job_id"`
	ArtifactID            *string                 `json:"artifact_id"`
	CreatedAt             time.Time               `json:"created_at"`
	UpdatedAt             time.Time               `json:"updated_at"`

	BaseModel               string           `json:"base_model"`
	GPUType                 string           `json:"gpu_type"`
	NumGPUs                 int              `json:"num_gpus"`
	Estimate                *estimate.Result `json:"estimate"` // what the job was created with (nil: none)
	MeasuredTokensPerSecond *float64         `json:"measured_tokens_per_second"`
	CancelRequestedAt       *time.Time       `json:"cancel_requested_at"`
	DatasetName             string           `json:"dataset_name,omitempty"`
	Name                    string           `json:"name"` // user-given ("" = none)
}

// JobCreateParams creates a queued job.
type JobCreateParams struct {
	ID, UserID, DatasetID, PresetID string
	At                              time.Time // the caller's clock
	Hyperparameters                 catalog.Hyperparameters
	GPUConfig                       jobdoc.GPUConfig
	Estimate                        *estimate.Result
	TotalEpochs                     int
	TotalSteps                      int
	EstimatedTotalCost              float64
	EstimatedCompletionAt           time.Time
	BaseModel, GPUType              string
	NumGPUs                         int
	Name                            string // optional
}

// JobListParams filter and page a user's jobs.
type JobListParams struct {
	UserID string
	Status string
	Page   int
	Limit  int
}

// JobSummary is the jobs page's cards.
type JobSummary struct {
	Active         int     `json:"active"`
	Completed      int     `json:"completed"`
	Failed         int     `json:"failed"`
	Cancelled      int     `json:"cancelled"`
	SpentThisMonth float64 `json:"spent_this_month"`
}

// Calibration is measured throughput of completed jobs.
type Calibration struct {
	TokensPerSecond float64 // mean per GPU
	Runs            int
	OverheadSeconds float64 // mean wall time outside the training loop (0 = unknown)
}

// UserSettings are per-user preferences (monthly budget).
type UserSettings struct {
	UserID         string    `json:"user_id"`
	MonthlyBudget  *float64  `json:"monthly_budget"`
	BudgetHardStop bool      `json:"budget_hard_stop"`
	At             time.Time `json:"-"` // when saved (the caller's clock)
}

// JobStore persists training jobs.
type JobStore interface {
	JobCreate(ctx context.Context, p JobCreateParams) (Job, error)
	JobGet(ctx context.Context, userID, id string) (Job, error)
	JobList(ctx context.Context, p JobListParams) ([]Job, int, error)
	// JobCancel applies the decided cancellation: a new status of cancelled
	// ends a queued job at once (final cost 0); an unchanged status records
	// the request for the agent to act on.
	JobCancel(ctx context.Context, p JobCancelParams) (Job, error)
	JobSummary(ctx context.Context, userID string, monthStart time.Time) (JobSummary, error)
	// JobCommitted sums estimates of the user's active jobs (money already
	// promised this month, for the budget check).
	JobCommitted(ctx context.Context, userID string) (float64, error)
	JobCalibration(ctx context.Context, gpuType, baseModel string) (Calibration, error)

	UserSettingsGet(ctx context.Context, userID string) (UserSettings, error)
	UserSettingsPut(ctx context.Context, s UserSettings) error
	// CostSpent sums the user's cost records since from.
	CostSpent(ctx context.Context, userID string, from time.Time) (float64, error)
}
