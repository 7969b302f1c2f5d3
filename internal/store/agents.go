package store

import (
	"context"
	"time"
)

// AgentSummary is an agent with what it is doing: the agents page's row.
type AgentSummary struct {
	Agent
	// CurrentJobID is the job the agent holds (initializing or running),
	// with its status and stage, and when its lease ends.
	CurrentJobID     *string    `json:"current_job_id"`
	CurrentJobStatus string     `json:"current_job_status,omitempty"`
	CurrentJobStage  string     `json:"current_job_stage,omitempty"`
	CurrentJobLease  *time.Time `json:"current_job_lease_until,omitempty"`
	JobsRun          int        `json:"jobs_run"` // jobs it claimed and finished (completed, failed or cancelled)
}

// OperatorGrant says whether UserCreate makes the new user an operator.
type OperatorGrant string

const (
	OperatorNo     OperatorGrant = ""
	OperatorIfNone OperatorGrant = "if_none" // when there is no operator yet (the first account)
	OperatorAlways OperatorGrant = "always"
)

// AgentAdminStore is what the agents page and the operator role persist.
// System methods: call them with AsSystem (agents are not any user's rows).
type AgentAdminStore interface {
	// AgentList lists non-revoked agents, newest first.
	AgentList(ctx context.Context) ([]AgentSummary, error)
	// AgentRevoke revokes an agent's token (not found when absent or
	// already revoked).
	AgentRevoke(ctx context.Context, id string, at time.Time) error
	OperatorIs(ctx context.Context, userID string) (bool, error)
	OperatorGrant(ctx context.Context, userID string, at time.Time) error
	// JobQueuePosition is the 1-based place of a queued job among the
	// queued jobs for the same GPU type (0 when it is not queued).
	JobQueuePosition(ctx context.Context, jobID string) (int, error)
}
