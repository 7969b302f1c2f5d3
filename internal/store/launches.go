package store

import (
	"context"
	"time"
)

// Launch states: requested (the row and its one-job agent exist), submitted
// (the engine accepted it: ExternalID is set), claimed (its agent took the
// job), ended (torn down or gone; its agent token is revoked).
const (
	LaunchRequested = "requested"
	LaunchSubmitted = "submitted"
	LaunchClaimed   = "claimed"
	LaunchEnded     = "ended"
)

// Launch is an ephemeral agent a launcher started for one attempt of a job.
type Launch struct {
	ID               string     `json:"id"`
	JobID            string     `json:"job_id"`
	Attempt          int        `json:"attempt"`
	Launcher         string     `json:"launcher"`
	Kind             string     `json:"kind"`
	AgentID          string     `json:"agent_id"`
	ExternalID       string     `json:"external_id"`
	LogsURL          string     `json:"logs_url"`
	TimeLimitSeconds int        `json:"time_limit_seconds"`
	State            string     `json:"state"`
	EndReason        string     `json:"end_reason,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	SubmittedAt      *time.Time `json:"submitted_at"`
	ClaimedAt        *time.Time `json:"claimed_at"`
	EndedAt          *time.Time `json:"ended_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// LaunchCreateParams create a launch and its one-job agent (bound to the
// job, so it can claim nothing else) in one transaction.
type LaunchCreateParams struct {
	ID, JobID        string
	Attempt          int
	Launcher, Kind   string
	AgentName        string
	TokenHash        string // of the one-job agent token
	TimeLimitSeconds int
	At               time.Time
}

// LaunchSubmittedParams record what the engine answered.
type LaunchSubmittedParams struct {
	ID, ExternalID, LogsURL string
	At                      time.Time
}

// LaunchEndParams end a launch and revoke its agent's token.
type LaunchEndParams struct {
	ID, Reason string
	At         time.Time
}

// LaunchListParams select launches: one user's (UserID set; JobID
// optional) or, as the system, one job's.
type LaunchListParams struct {
	UserID, JobID string
	Limit         int
}

// OnlineAgent is an agent seen recently, with whether it holds an active job.
type OnlineAgent struct {
	Agent
	Busy bool
}

// LaunchStore persists launches (internal/launchers).
type LaunchStore interface {
	// LaunchCreate is a conflict when the job already has an open launch.
	LaunchCreate(ctx context.Context, p LaunchCreateParams) (Launch, error)
	LaunchSubmitted(ctx context.Context, p LaunchSubmittedParams) error
	// LaunchClaimed marks the launch's agent as having claimed the job at at.
	LaunchClaimed(ctx context.Context, id string, at time.Time) error
	LaunchEnd(ctx context.Context, p LaunchEndParams) error
	// LaunchesOpen lists every launch not ended, oldest first.
	LaunchesOpen(ctx context.Context) ([]Launch, error)
	LaunchList(ctx context.Context, p LaunchListParams) ([]Launch, error)
	// JobsQueued lists queued jobs, oldest first.
	JobsQueued(ctx context.Context, limit int) ([]ExecJob, error)
	// AgentsOnline lists non-revoked agents seen at or after since.
	AgentsOnline(ctx context.Context, since time.Time) ([]OnlineAgent, error)
}
