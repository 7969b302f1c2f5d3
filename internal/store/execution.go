package store

import (
	"context"
	"encoding/json"
	"time"
)

// Agent is a registered trainer agent.
type Agent struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Capabilities json.RawMessage `json:"capabilities"`
	Version      string          `json:"version"`
	Hostname     string          `json:"hostname"`
	LastSeenAt   *time.Time      `json:"last_seen_at"`
	CreatedAt    time.Time       `json:"created_at"`
	RevokedAt    *time.Time      `json:"revoked_at"`
}

// ClaimParams describe the claiming agent.
type ClaimParams struct {
	AgentID  string
	GPUType  string
	GPUCount int
	// TokenHash returns the hash of the new attempt's job token.
	TokenHash func(jobID string, attempt int) string
	Now       time.Time
	Lease     time.Duration
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
	Checkpoint       json.RawMessage
	ErrorClass       string
	MaxRetries       int
	AgentID          string
}

// Rate is the job's price per wall-clock hour (GPU price × count).
func (j ExecJob) Rate() float64 {
	var g struct {
		Cost float64 `json:"cost_per_gpu_hour"`
		N    int     `json:"num_gpus"`
	}
	_ = json.Unmarshal(j.GPUConfig, &g)
	if g.N == 0 {
		g.N = 1
	}
	return g.Cost * float64(g.N)
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
}

// MetricPoint is one metrics_points row.
type MetricPoint struct {
	Step            int        `json:"step"`
	Epoch           float64    `json:"epoch"`
	TrainingLoss    *float64   `json:"training_loss"`
	ValidationLoss  *float64   `json:"validation_loss"`
	LearningRate    *float64   `json:"learning_rate"`
	GradientNorm    *float64   `json:"gradient_norm"`
	TokensPerSecond *float64   `json:"tokens_per_second"`
	GPUUtilization  *float64   `json:"gpu_utilization"`
	GPUMemoryGB     *float64   `json:"gpu_memory_gb"`
	MFU             *float64   `json:"mfu"`
	Timestamp       *time.Time `json:"timestamp"`
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
	Details       json.RawMessage `json:"details"`
	BillingPeriod string          `json:"billing_period"`
	RecordedAt    time.Time       `json:"recorded_at"`
}

// ArtifactCreateParams create a model_artifacts row at completion.
type ArtifactCreateParams struct {
	Name            string
	QualityMetrics  json.RawMessage
	TrainingSummary json.RawMessage
	Configuration   json.RawMessage
	Artifacts       json.RawMessage
}

// FinishParams end an attempt for good.
type FinishParams struct {
	JobID        string
	Attempt      int // 0 = whatever attempt is current (lease expiry)
	Status       string
	ErrorClass   string
	ErrorMessage string
	ErrorStack   string
	Now          time.Time
	Artifact     *ArtifactCreateParams
	MeasuredTPS  *float64
	// MeasuredOverhead is the run's wall time outside the training loop.
	MeasuredOverhead *float64
	Notification     *NotificationCreateParams // created in the same transaction
	Event            string
}

// ExecutionStore is what the agent protocol and the lease worker persist.
type ExecutionStore interface {
	AgentCreate(ctx context.Context, name, tokenHash string) (Agent, error)
	AgentByTokenHash(ctx context.Context, hash string) (Agent, error)
	AgentSeen(ctx context.Context, id string, caps json.RawMessage, version, hostname string, at time.Time) error

	JobClaim(ctx context.Context, p ClaimParams) (Claim, bool, error)
	JobExec(ctx context.Context, id string) (ExecJob, error)
	JobHeartbeat(ctx context.Context, p HeartbeatParams) (cancel bool, err error)
	JobCheckpointSet(ctx context.Context, id string, attempt int, checkpoint json.RawMessage) error
	JobRequeue(ctx context.Context, id string, attempt int, class, message string, now time.Time) (ExecJob, error)
	JobFinish(ctx context.Context, p FinishParams) (ExecJob, error)
	JobExpiredLeases(ctx context.Context, now time.Time, limit int) ([]ExecJob, error)

	MetricsUpsert(ctx context.Context, jobID string, attempt int, points []MetricPoint) (int, error)
	MetricsList(ctx context.Context, userID, jobID string, sinceStep, limit int) ([]MetricPoint, error)
	JobEventsAdd(ctx context.Context, jobID string, attempt int, events []JobEvent) error
	JobEventsList(ctx context.Context, userID, jobID string, limit int) ([]JobEvent, error)
	CostRecordsForJob(ctx context.Context, userID, jobID string) ([]CostRecord, error)
}
