package store

import (
	"context"
	"time"
)

// JobPaused is the status of a job stopped at a checkpoint on the user's
// request; resuming queues it again and the next attempt continues from
// that checkpoint.
const JobPaused = "paused"

// Stop reasons a heartbeat answer carries (Effects.Stop).
const (
	StopCancel = "cancel"
	StopPause  = "pause"
)

// JobUserStepParams apply a user's pause or resume to one of their jobs.
type JobUserStepParams struct {
	UserID, ID string
	At         time.Time
	Decide     Decide // Status (changed: moved at once; unchanged: a pause recorded for the agent), Stage, Events, Notifications
}

// JobParkParams end an attempt the agent stopped on a pause request.
type JobParkParams struct {
	JobID   string
	Attempt int
	Now     time.Time
	Decide  Decide // Status, Stage, RunSeconds, Cost, Events
}

// PauseStore persists pausing and resuming.
type PauseStore interface {
	// JobPauseRequest pauses a queued job at once, or records the request
	// on an active one (the agent is told at the next checkpoint).
	JobPauseRequest(ctx context.Context, p JobUserStepParams) (Job, error)
	// JobResume queues a paused job again.
	JobResume(ctx context.Context, p JobUserStepParams) (Job, error)
	// JobPark ends the attempt as paused: its time is added to the run
	// seconds, the checkpoint stays, and no retry is counted.
	JobPark(ctx context.Context, p JobParkParams) (ExecJob, error)
}
