// Package launchers starts ephemeral trainer agents on existing engines
// (Slurm, Kubernetes) when a queued job has no capable idle agent, and tears
// them down when the job no longer needs them. See docs/launchers.md.
//
// The reconciler (Service.Tick) owns the rules: which job needs a launch,
// which launcher takes it, the limits, the one-job agent token, the event
// log lines. A Launcher only talks to its engine.
package launchers

import (
	"context"
	"time"
)

// Spec is what a launcher needs to start one agent for one job attempt.
type Spec struct {
	LaunchID  string // unique per launch; safe in names (a UUID)
	JobID     string
	Attempt   int
	AgentName string // the agent's name on the server
	// Token is the one-job agent token (bra_…). It can claim only JobID and
	// is revoked when the launch ends; pass it as a secret, never on a
	// command line.
	Token     string
	ServerURL string // where the agent reaches the server
	GPUType   string // the catalog's gpu_type ("CPU" for a CPU agent)
	GPUCount  int
	TimeLimit time.Duration // the engine kills the agent after this
}

// Handle is what the engine answered: its id for the agent and where its
// logs can be read.
type Handle struct {
	ExternalID string
	LogsURL    string
}

// State is an engine's view of one launched agent.
type State string

// States a launcher reports.
const (
	StatePending State = "pending" // accepted, not running yet
	StateRunning State = "running"
	StateDone    State = "done" // finished, failed, cancelled or gone
)

// Launcher starts and stops agents on one engine. Implementations must be
// safe for concurrent use; every method is called with a context that the
// reconciler cancels after a bounded time.
type Launcher interface {
	// Kind names the engine ("slurm", "kubernetes").
	Kind() string
	// Submit starts an agent for spec and returns its handle.
	Submit(ctx context.Context, spec Spec) (Handle, error)
	// Stop tears the agent down. Stopping one that already ended is not an
	// error.
	Stop(ctx context.Context, externalID string) error
	// States reports the state of each id; an id the engine no longer knows
	// is StateDone.
	States(ctx context.Context, externalIDs []string) (map[string]State, error)
}
