package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/datasets/validate"
)

// Agent work kinds (work an agent does that is not a training job).
const (
	// WorkPreflight: encode a dataset with a base model's tokenizer and
	// chat template and upload its exact token profile.
	WorkPreflight = "preflight"
)

// Agent work statuses.
const (
	WorkQueued    = "queued"
	WorkRunning   = "running"
	WorkCompleted = "completed"
	WorkFailed    = "failed"
)

// AgentWork is one work item for agents (docs/agent-protocol.md, "Agent work").
type AgentWork struct {
	ID             string     `json:"id"`
	Kind           string     `json:"kind"`
	UserID         string     `json:"user_id"`
	DatasetID      string     `json:"dataset_id"`
	BaseModel      string     `json:"base_model"`
	Status         string     `json:"status"`
	AgentID        string     `json:"agent_id,omitempty"`
	Attempts       int        `json:"attempts"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
	Error          string     `json:"error,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// AgentWorkEnqueueParams queue work for (kind, dataset, base model) unless
// it is already queued or running, already done (a profile exists), or
// failed at or after RetryFailedAfter.
type AgentWorkEnqueueParams struct {
	ID, Kind, UserID, DatasetID, BaseModel string
	RetryFailedAfter                       time.Time
	At                                     time.Time
}

// AgentWorkClaimParams claim the oldest claimable work for an agent: queued,
// or running with its lease expired (the agent that had it went away), with
// fewer than MaxAttempts attempts. BaseModels limits the models (empty: any).
type AgentWorkClaimParams struct {
	AgentID    string
	Kinds      []string
	BaseModels []string
	// ExportFormats limits export work to these formats (empty: any).
	ExportFormats []string
	Lease         time.Duration
	MaxAttempts   int
	Now           time.Time
}

// AgentWorkCompleteParams store a preflight's exact profile and complete the
// work, in one transaction; only the agent holding the work may.
type AgentWorkCompleteParams struct {
	ID, AgentID string
	Profile     validate.TokenProfile
	At          time.Time
}

// AgentWorkFailParams fail the work (only the agent holding it may).
type AgentWorkFailParams struct {
	ID, AgentID, Error string
	At                 time.Time
}

// AgentWorkStore persists agent work and exact token profiles.
type AgentWorkStore interface {
	// AgentWorkEnqueue returns the open work for the pair (created or
	// already there), or ok false when none is needed.
	AgentWorkEnqueue(ctx context.Context, p AgentWorkEnqueueParams) (AgentWork, bool, error)
	AgentWorkClaim(ctx context.Context, p AgentWorkClaimParams) (AgentWork, bool, error)
	// AgentWorkGet is a 404 unless the work is held by agentID.
	AgentWorkGet(ctx context.Context, id, agentID string) (AgentWork, error)
	AgentWorkComplete(ctx context.Context, p AgentWorkCompleteParams) error
	AgentWorkFail(ctx context.Context, p AgentWorkFailParams) error
	// AgentWorkLatest is the newest work of a user's (kind, dataset, model), ok false when none.
	AgentWorkLatest(ctx context.Context, userID, kind, datasetID, baseModel string) (AgentWork, bool, error)
	// DatasetModelProfile is the exact token profile of one of the user's
	// datasets for a base model (nil when none was computed).
	DatasetModelProfile(ctx context.Context, userID, datasetID, baseModel string) (*validate.TokenProfile, error)
}
