package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// Service applies lifecycle events to jobs. Every step reads the job row
// inside the store's transaction, checks the event against the state
// machine, and decides status, cost, events, notifications and cost records
// from that row, so two racing steps can never both apply.
type Service struct {
	Store store.Store
	Now   func() time.Time
}

func (s *Service) now() time.Time { return s.Now().UTC() }

func info(stage, msg string, at time.Time) store.JobEvent {
	return store.JobEvent{Level: "info", Stage: stage, Message: msg, CreatedAt: at}
}

// ClaimRequest describes the claiming agent.
type ClaimRequest struct {
	AgentID   string
	JobID     string // a launched one-job agent's job (empty: any job)
	GPUType   string
	GPUCount  int
	TokenHash func(jobID string, attempt int) string
	Lease     time.Duration
}

// Claim hands the oldest queued job the agent can run to it, if any.
func (s *Service) Claim(ctx context.Context, r ClaimRequest) (store.Claim, bool, error) {
	now := s.now()
	return s.Store.JobClaim(store.AsSystem(ctx), store.ClaimParams{AgentID: r.AgentID, JobID: r.JobID, GPUType: r.GPUType, GPUCount: r.GPUCount,
		TokenHash: r.TokenHash, Now: now, Lease: r.Lease, Decide: func(pre store.ExecJob) (store.Effects, error) {
			to, err := Next(pre.Status, Claim)
			if err != nil {
				return store.Effects{}, err
			}
			claimed := pre
			claimed.Attempt++
			eff := store.Effects{Status: to, Stage: "downloading", Events: []store.JobEvent{info("downloading", claimedEvent(claimed), now)}}
			if claimed.Attempt == 1 {
				eff.Notifications = append(eff.Notifications, startedNotice(claimed))
			}
			return eff, nil
		}})
}

// Progress is what a heartbeat reports.
type Progress struct {
	Stage        string
	Progress     float64
	Epoch, Step  int
	TotalSteps   int
	TokensPerSec float64
	ETASeconds   float64
	Lease        time.Duration
}

// Heartbeat records progress, extends the lease and accrues the cost so
// far; it answers whether the agent should stop: store.StopCancel when the
// user asked to cancel, store.StopPause when a pause may happen now.
func (s *Service) Heartbeat(ctx context.Context, j store.ExecJob, p Progress) (string, error) {
	now := s.now()
	return s.Store.JobHeartbeat(store.AsSystem(ctx), store.HeartbeatParams{JobID: j.ID, Attempt: j.Attempt, Stage: p.Stage, Progress: p.Progress,
		Epoch: p.Epoch, Step: p.Step, TotalSteps: p.TotalSteps, TokensPerSec: p.TokensPerSec, ETASeconds: ETA(j.Job, p.Stage, p.ETASeconds, p.TokensPerSec), Now: now, Lease: p.Lease,
		Decide: func(e store.ExecJob) (store.Effects, error) {
			to, err := Next(e.Status, StageEvent(p.Stage))
			if err != nil {
				return store.Effects{}, err
			}
			return store.Effects{Status: to, Cost: Cost(Elapsed(e, now), Rate(e.Job)), Stop: stopReason(e, to)}, nil
		}})
}

// Requeue puts the attempt back in the queue after a retryable failure or a
// lost agent; the time it ran is billed, the next attempt resumes from the
// last checkpoint.
func (s *Service) Requeue(ctx context.Context, j store.ExecJob, class, message string) error {
	now := s.now()
	_, err := s.Store.JobRequeue(store.AsSystem(ctx), store.RequeueParams{JobID: j.ID, Attempt: j.Attempt, Class: class, Message: message, Now: now,
		Decide: func(e store.ExecJob) (store.Effects, error) {
			to, err := Next(e.Status, Requeue)
			if err != nil {
				return store.Effects{}, err
			}
			secs := Elapsed(e, now)
			return store.Effects{Status: to, Stage: store.JobQueued, RunSeconds: secs, Cost: Cost(secs, Rate(e.Job)),
				Events: []store.JobEvent{{Level: "warn", Stage: store.JobQueued, Message: requeuedEvent(e, message), CreatedAt: now}}}, nil
		}})
	return err
}

// end finishes a job for good with event ev: final cost (for used GPUs, 0:
// the job's num_gpus), its compute cost record, the event line and the
// notifications notes returns.
func (s *Service) end(ctx context.Context, p store.FinishParams, ev Event, line string, used int, notes func(e store.ExecJob) []store.NotificationCreateParams) (store.ExecJob, error) {
	now := s.now()
	p.Now = now
	p.Decide = func(e store.ExecJob) (store.Effects, error) {
		to, err := Next(e.Status, ev)
		if err != nil {
			return store.Effects{}, err
		}
		secs := Elapsed(e, now)
		cost := Cost(secs, RateFor(e.Job, used))
		progress := e.Progress
		if to == store.JobCompleted {
			progress = 100
		}
		level := "info"
		if to == store.JobFailed {
			level = "error"
		}
		return store.Effects{Status: to, Stage: to, RunSeconds: secs, Cost: cost, Progress: progress,
			Events:        []store.JobEvent{{Level: level, Stage: to, Message: line, CreatedAt: now}},
			Notifications: notes(e), CostRecords: []store.CostRecordCreateParams{computeRecord(e, to, secs, cost, used, now)}}, nil
	}
	return s.Store.JobFinish(store.AsSystem(ctx), p)
}

// Failure describes a failure for good.
type Failure struct {
	Class   string
	Message string // what the user reads: the error and what to do about it
	Stack   string
	Line    string // the event log line
	Notice  string // the notification's text
}

// Fail ends the job as failed.
func (s *Service) Fail(ctx context.Context, j store.ExecJob, f Failure) error {
	_, err := s.end(ctx, store.FinishParams{JobID: j.ID, Attempt: j.Attempt, ErrorClass: f.Class, ErrorMessage: f.Message, ErrorStack: f.Stack},
		Fail, f.Line, 0, func(e store.ExecJob) []store.NotificationCreateParams {
			return []store.NotificationCreateParams{failedNotice(e, f.Notice, f.Class)}
		})
	return err
}

// Stopped ends a job the agent stopped on the user's request; the time it
// ran is billed.
func (s *Service) Stopped(ctx context.Context, j store.ExecJob, step int) error {
	_, err := s.end(ctx, store.FinishParams{JobID: j.ID, Attempt: j.Attempt}, Stopped, fmt.Sprintf("cancelled at step %d", step), 0,
		func(e store.ExecJob) []store.NotificationCreateParams {
			return []store.NotificationCreateParams{stoppedNotice(e, step)}
		})
	return err
}

// Completion is a verified, finished run.
type Completion struct {
	Artifact    store.ArtifactCreateParams // the model (its ID is assigned here)
	MeasuredTPS *float64
	Overhead    *float64 // wall time outside the training loop
	Summary     string   // the completion notification's text
	// GPUsUsed is the number of training processes (one per GPU) the agent
	// reported; 0: unknown, bill the job's num_gpus.
	GPUsUsed int
}

// Complete ends the job as completed with its model artifact, in one
// transaction with its cost record and notifications.
func (s *Service) Complete(ctx context.Context, j store.ExecJob, c Completion) (store.ExecJob, error) {
	a := c.Artifact
	a.ID = uuid.NewString()
	return s.end(ctx, store.FinishParams{JobID: j.ID, Attempt: j.Attempt, Artifact: &a, MeasuredTPS: c.MeasuredTPS, MeasuredOverhead: c.Overhead},
		Complete, "completed: adapter uploaded", c.GPUsUsed, func(e store.ExecJob) []store.NotificationCreateParams {
			return []store.NotificationCreateParams{completedNotice(e, c.Summary), artifactNotice(e, a.Name, a.ID)}
		})
}

// Cancel is the user's cancel: a queued job ends at once and costs nothing;
// an active one is asked to stop (the agent sees it on its next heartbeat).
func (s *Service) Cancel(ctx context.Context, userID, id string) (store.Job, error) {
	// As the system: the cancellation notification is written in the same
	// transaction, and users may not insert notifications (RLS); the store
	// still finds the job by id AND user_id, so another user's job is a 404.
	return s.Store.JobCancel(store.AsSystem(ctx), store.JobCancelParams{UserID: userID, ID: id, At: s.now(), Decide: func(e store.ExecJob) (store.Effects, error) {
		to, err := Next(e.Status, CancelRequest)
		if err != nil {
			return store.Effects{}, err
		}
		eff := store.Effects{Status: to, Stage: to}
		switch {
		case to == store.JobCancelled && e.Status == store.JobPaused:
			// A paused job ran: the time it ran is billed now that it ends.
			secs := Elapsed(e, s.now())
			eff.Cost = Cost(secs, Rate(e.Job))
			eff.Events = []store.JobEvent{info(to, "cancelled while paused", s.now())}
			eff.Notifications = []store.NotificationCreateParams{stoppedNotice(e, e.CurrentStep)}
			eff.CostRecords = []store.CostRecordCreateParams{computeRecord(e, to, secs, eff.Cost, 0, s.now())} // 0: the GPUs the job asked for
		case to == store.JobCancelled:
			eff.Notifications = []store.NotificationCreateParams{cancelledQueuedNotice(e.Job)}
		}
		return eff, nil
	}})
}
