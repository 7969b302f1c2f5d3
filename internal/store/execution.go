package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
)

// Agent is a registered trainer agent.
type Agent struct {
	ID           string               `json:"id"`
	Name         string               `json:"name"`
	Capabilities *jobdoc.Capabilities `json:"capabilities"` // nil until its first claim
	Version      string               `json:"version"`
	Hostname     string               `json:"hostname"`
	LastSeenAt   *time.Time           `json:"last_seen_at"`
	CreatedAt    time.Time            `json:"created_at"`
	RevokedAt    *time.Time           `json:"revoked_at"`
	// JobID binds a launched, one-job agent to its job (empty for others).
	JobID string `json:"job_id,omitempty"`
}

// ClaimParams describe the claiming agent.
type ClaimParams struct {
	AgentID  string
	JobID    string // a one-job agent's job: claim only it (empty: any)
	GPUType  string
	GPUCount int
	// TokenHash returns the hash of the new attempt's job token.
	TokenHash func(jobID string, attempt int) string
	Now       time.Time
	Lease     time.Duration
	// Decide is given the queued row before the claim; its Status and Stage
	// are the claimed job's, its events and notifications are written with it.
	Decide Decide
}

// Effects are what one lifecycle step writes, decided by the jobs domain
// from the row the store read inside the step's transaction. The store only
// persists them: it holds no status rules, texts or prices.
type Effects struct {
	Status        string
	Stage         string
	RunSeconds    float64 // billable seconds of the finished attempts
	Cost          float64 // cost so far (the final cost when the job ends)
	Progress      float64
	Events        []JobEvent
	Notifications []NotificationCreateParams
	CostRecords   []CostRecordCreateParams
	// Stop is the heartbeat's answer: "" (go on), StopCancel or StopPause.
	Stop string
}

// Decide computes a step's effects from the job's current row; an error
// aborts the step and nothing is written.
type Decide func(ExecJob) (Effects, error)

// CostRecordCreateParams add a cost_records row.
type CostRecordCreateParams struct {
	UserID, JobID string
	Type          string // compute | storage | inference
	Amount        float64
	Details       costdoc.Details
	BillingPeriod string // YYYY-MM-DD
	At            time.Time
}

// Claim is a job handed to an agent.
type Claim struct {
	Job     Job
	Dataset Dataset
}

// ExecJob is a job as the execution layer sees it.
type ExecJob struct {
	Job
	Attempt          int
	JobTokenHash     string
	LeaseExpiresAt   *time.Time
	AttemptStartedAt *time.Time
	RunSeconds       float64
	Checkpoint       *jobdoc.Checkpoint // the last uploaded checkpoint (nil: none)
	ErrorClass       string
	MaxRetries       int
	AgentID          string
	// PauseRequestedAt is set while a pause waits for the next checkpoint;
	// CheckpointAt is when the last checkpoint was registered.
	PauseRequestedAt *time.Time
	CheckpointAt     *time.Time
}

// HeartbeatParams update a running attempt.
type HeartbeatParams struct {
	JobID, Stage string
	Attempt      int
	Progress     float64
	Epoch, Step  int
	TotalSteps   int
	TokensPerSec float64
	ETASeconds   float64
	Now          time.Time
	Lease        time.Duration
	Decide       Decide // Status, Cost and Stop
}

// RequeueParams put an attempt back in the queue.
type RequeueParams struct {
	JobID          string
	Attempt        int
	Class, Message string
	Now            time.Time
	Decide         Decide // Status, Stage, RunSeconds, Cost, Events
}

// MetricPoint is one metrics_points row.
type MetricPoint struct {
	Step           int      `json:"step"`
	Epoch          float64  `json:"epoch"`
	TrainingLoss   *float64 `json:"training_loss"`
	ValidationLoss *float64 `json:"validation_loss"`
	// Token accuracies: the share of assistant tokens whose argmax
	// prediction is the label (training: the logged window; validation: the
	// evaluation pass at the step). Fractions in [0, 1].
	TrainMeanTokenAccuracy *float64   `json:"train_mean_token_accuracy"`
	ValidMeanTokenAccuracy *float64   `json:"valid_mean_token_accuracy"`
	LearningRate           *float64   `json:"learning_rate"`
	GradientNorm           *float64   `json:"gradient_norm"`
	TokensPerSecond        *float64   `json:"tokens_per_second"`
	GPUUtilization         *float64   `json:"gpu_utilization"`
	GPUMemoryGB            *float64   `json:"gpu_memory_gb"`
	MFU                    *float64   `json:"mfu"`
	Timestamp              *time.Time `json:"timestamp"`
}

// JobEvent is one line of a job's event log.
type JobEvent struct {
	ID        string    `json:"id"`
	Attempt   int       `json:"attempt"`
	Level     string    `json:"level"`
	Stage     string    `json:"stage,omitempty"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

// CostRecord is a cost_records row.
type CostRecord struct {
	ID            string          `json:"id"`
	UserID        string          `json:"user_id"`
	JobID         *string         `json:"job_id"`
	CostType      string          `json:"cost_type"`
	Amount        float64         `json:"amount"`
	Details       costdoc.Details `json:"details"`
	BillingPeriod string          `json:"billing_period"`
	RecordedAt    time.Time       `json:"recorded_at"`
}

// UnmarshalJSON reads a record as the API writes it, decoding its details
// by its cost_type (API clients and tests).
func (c *CostRecord) UnmarshalJSON(b []byte) error {
	type plain CostRecord
	var v struct {
		plain
		Details json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	d, err := costdoc.Decode(v.CostType, v.Details)
	if err != nil {
		return err
	}
	*c = CostRecord(v.plain)
	c.Details = d
	return nil
}

// ArtifactCreateParams create a model_artifacts row at completion.
type ArtifactCreateParams struct {
	ID              string
	Name            string
	QualityMetrics  jobdoc.Quality
	TrainingSummary jobdoc.Summary
	Configuration   jobdoc.Configuration
	Artifacts       jobdoc.Artifacts
}

// FinishParams end an attempt for good.
type FinishParams struct {
	JobID        string
	Attempt      int // 0 = whatever attempt is current (lease expiry)
	ErrorClass   string
	ErrorMessage string
	ErrorStack   string
	Now          time.Time
	Artifact     *ArtifactCreateParams
	MeasuredTPS  *float64
	// MeasuredOverhead is the run's wall time outside the training loop.
	MeasuredOverhead *float64
	Decide           Decide // Status, Stage, RunSeconds, Cost (final), Progress, Events, Notifications, CostRecords
}

// JobCancelParams ask to cancel one of the user's jobs.
type JobCancelParams struct {
	UserID, ID string
	At         time.Time
	Decide     Decide // Status (cancelled at once, or unchanged: requested), Notifications
}

// ExecutionStore is what the agent protocol and the lease worker persist.
type ExecutionStore interface {
	AgentCreate(ctx context.Context, name, tokenHash string, at time.Time) (Agent, error)
	AgentByTokenHash(ctx context.Context, hash string) (Agent, error)
	AgentSeen(ctx context.Context, id string, caps jobdoc.Capabilities, version, hostname string, at time.Time) error

	JobClaim(ctx context.Context, p ClaimParams) (Claim, bool, error)
	JobExec(ctx context.Context, id string) (ExecJob, error)
	JobHeartbeat(ctx context.Context, p HeartbeatParams) (stop string, err error)
	JobCheckpointSet(ctx context.Context, id string, attempt int, checkpoint jobdoc.Checkpoint, at time.Time) error
	JobRequeue(ctx context.Context, p RequeueParams) (ExecJob, error)
	JobFinish(ctx context.Context, p FinishParams) (ExecJob, error)
	JobExpiredLeases(ctx context.Context, now time.Time, limit int) ([]ExecJob, error)

	// MetricsUpsert stamps points without a timestamp with at.
	MetricsUpsert(ctx context.Context, jobID string, attempt int, points []MetricPoint, at time.Time) (int, error)
	MetricsList(ctx context.Context, userID, jobID string, sinceStep, limit int) ([]MetricPoint, error)
	// JobEventsAdd stamps events without a time with at.
	JobEventsAdd(ctx context.Context, jobID string, attempt int, events []JobEvent, at time.Time) error
	JobEventsList(ctx context.Context, userID, jobID string, limit int) ([]JobEvent, error)
	CostRecordsForJob(ctx context.Context, userID, jobID string) ([]CostRecord, error)
}
