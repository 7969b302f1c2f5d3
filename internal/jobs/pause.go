package jobs

import (
	"context"
	"fmt"

	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
)

// stopReason decides a heartbeat's answer. A cancel stops at once. A pause
// stops "at the next checkpoint": once a checkpoint was registered after
// the request (the steps after it are trained again on resume, at most one
// heartbeat's worth), or at once while the attempt has not started
// training (there is nothing to lose).
func stopReason(e store.ExecJob, to string) string {
	switch {
	case e.CancelRequestedAt != nil:
		return store.StopCancel
	case e.PauseRequestedAt == nil:
		return ""
	case to == store.JobInitializing:
		return store.StopPause
	case e.CheckpointAt != nil && !e.CheckpointAt.Before(*e.PauseRequestedAt):
		return store.StopPause
	}
	return ""
}

// Pause is the user's pause: a queued job is paused at once; an active one
// is asked to stop at its next checkpoint and release the GPU.
func (s *Service) Pause(ctx context.Context, userID, id string) (store.Job, error) {
	now := s.now()
	return s.Store.JobPauseRequest(store.AsSystem(ctx), store.JobUserStepParams{UserID: userID, ID: id, At: now, Decide: func(e store.ExecJob) (store.Effects, error) {
		to, err := Next(e.Status, PauseRequest)
		if err != nil {
			return store.Effects{}, err
		}
		line := "pause requested: the job stops at its next checkpoint"
		if to == store.JobPaused {
			line = "paused before an agent picked it up"
		} else if e.PauseRequestedAt != nil {
			return store.Effects{Status: to}, nil // asked twice: nothing new
		}
		return store.Effects{Status: to, Stage: to, Events: []store.JobEvent{info(to, line, now)}}, nil
	}})
}

// Resume queues a paused job again; the next attempt continues from its
// last checkpoint.
func (s *Service) Resume(ctx context.Context, userID, id string) (store.Job, error) {
	now := s.now()
	return s.Store.JobResume(store.AsSystem(ctx), store.JobUserStepParams{UserID: userID, ID: id, At: now, Decide: func(e store.ExecJob) (store.Effects, error) {
		to, err := Next(e.Status, Resume)
		if err != nil {
			return store.Effects{}, err
		}
		line := "resumed: queued again"
		if e.Checkpoint != nil {
			line += "; the next attempt continues from the last checkpoint"
		}
		return store.Effects{Status: to, Stage: to, Events: []store.JobEvent{info(to, line, now)}}, nil
	}})
}

// Park ends an attempt that stopped on a pause request: the time it ran is
// added to the job (billed when the job ends), the checkpoint stays, the
// GPU is free.
func (s *Service) Park(ctx context.Context, j store.ExecJob, step int) error {
	now := s.now()
	_, err := s.Store.JobPark(store.AsSystem(ctx), store.JobParkParams{JobID: j.ID, Attempt: j.Attempt, Now: now, Decide: func(e store.ExecJob) (store.Effects, error) {
		to, err := Next(e.Status, Parked)
		if err != nil {
			return store.Effects{}, err
		}
		secs := Elapsed(e, now)
		line := fmt.Sprintf("paused at step %d", step)
		if e.Checkpoint != nil {
			line += "; resuming continues from the last checkpoint"
		}
		return store.Effects{Status: to, Stage: to, RunSeconds: secs, Cost: Cost(secs, Rate(e.Job)),
			Events: []store.JobEvent{info(to, line, now)}, Notifications: []store.NotificationCreateParams{pausedNotice(e, step)}}, nil
	}})
	return err
}

func pausedNotice(e store.ExecJob, step int) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: e.UserID, Type: "job_paused", Priority: "low", Title: "Training paused: " + e.DatasetName,
		Message:   fmt.Sprintf("The job paused at step %d and released its GPU; resume it to continue from its last checkpoint.", step),
		ActionURL: JobURL(e.ID), Metadata: notifydoc.Job(e.ID)}
}
