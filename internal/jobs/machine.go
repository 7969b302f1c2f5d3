// Package jobs owns the training job lifecycle: the state machine (which
// event may move a job from which status to which), cost accrual and final
// cost, cost records, the events and notifications each step writes, and
// the stage → status rule. The agent protocol (agentapi), the user API
// (training) and the lease worker call it; the store only persists what it
// decides, in the same transaction as the row it read.
package jobs

import (
	"fmt"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// Event is something that happens to a job.
type Event string

// Lifecycle events.
const (
	Claim         Event = "claim"          // an agent takes a queued job
	Setup         Event = "setup"          // a heartbeat in a stage before training (downloading, loading_model, …)
	Train         Event = "train"          // a heartbeat in training or a later stage (evaluating, saving, uploading)
	Requeue       Event = "requeue"        // a retryable failure, or the agent's lease ran out with retries left
	Complete      Event = "complete"       // the adapter is uploaded and verified
	Fail          Event = "fail"           // a failure for good
	CancelRequest Event = "cancel_request" // the user asks to cancel
	Stopped       Event = "stopped"        // the agent stopped on a cancel request (or its lease ran out after one)
	PauseRequest  Event = "pause_request"  // the user asks to pause (stop at the next checkpoint, release the GPU)
	Parked        Event = "parked"         // the agent stopped on a pause request (or its lease ran out after one)
	Resume        Event = "resume"         // the user resumes a paused job
)

// Events lists every event, for tests and docs.
var Events = []Event{Claim, Setup, Train, Requeue, Complete, Fail, CancelRequest, Stopped, PauseRequest, Parked, Resume}

// Statuses lists every status.
var Statuses = []string{store.JobQueued, store.JobInitializing, store.JobRunning, store.JobPaused, store.JobCompleted, store.JobFailed, store.JobCancelled}

// transitions is the whole state machine: status × event → status. Anything
// not listed is illegal. A cancel request on an active job keeps its status
// (the agent is told on its next heartbeat and answers with Stopped); on a
// queued job it cancels at once. A pause request works the same way: a
// queued job is paused at once, an active one keeps its status until the
// agent, told at the next checkpoint, stops (Parked); resuming queues it
// again and the next attempt continues from that checkpoint. Finished jobs
// accept nothing: a retry is a new job.
var transitions = map[string]map[Event]string{
	store.JobQueued: {
		Claim:         store.JobInitializing,
		CancelRequest: store.JobCancelled,
		PauseRequest:  store.JobPaused,
	},
	store.JobInitializing: {
		Setup:         store.JobInitializing,
		Train:         store.JobRunning,
		Requeue:       store.JobQueued,
		Complete:      store.JobCompleted,
		Fail:          store.JobFailed,
		CancelRequest: store.JobInitializing,
		Stopped:       store.JobCancelled,
		PauseRequest:  store.JobInitializing,
		Parked:        store.JobPaused,
	},
	store.JobRunning: {
		Setup:         store.JobRunning, // a late setup-stage heartbeat never moves a job back
		Train:         store.JobRunning,
		Requeue:       store.JobQueued,
		Complete:      store.JobCompleted,
		Fail:          store.JobFailed,
		CancelRequest: store.JobRunning,
		Stopped:       store.JobCancelled,
		PauseRequest:  store.JobRunning,
		Parked:        store.JobPaused,
	},
	store.JobPaused: {
		Resume:        store.JobQueued,
		CancelRequest: store.JobCancelled,
	},
}

// Next is the status after ev happens to a job in status from, or a 409
// that says why the event is not possible now.
func Next(from string, ev Event) (string, error) {
	if to, ok := transitions[from][ev]; ok {
		return to, nil
	}
	return "", apperr.Conflict("%s", illegal(from, ev))
}

func illegal(from string, ev Event) string {
	switch {
	case ev == CancelRequest || ev == PauseRequest:
		return fmt.Sprintf("the job is already %s", from)
	case ev == Resume:
		return fmt.Sprintf("only a paused job can be resumed; this one is %s", from)
	case from == store.JobQueued:
		return "the job is queued: no agent is working on it"
	}
	return fmt.Sprintf("the job is %s", from)
}

// StageEvent is the heartbeat event for a stage the agent reports: stages
// from training on mean the job is running.
func StageEvent(stage string) Event {
	switch stage {
	case "training", "evaluating", "saving", "uploading":
		return Train
	}
	return Setup
}
