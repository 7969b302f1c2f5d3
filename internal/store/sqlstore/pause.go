package sqlstore

import (
	"context"

	"github.com/brightrun/brightrun/internal/store"
)

// userStep locks one of the user's jobs, asks Decide, and applies it with
// apply (which gets the row and the effects) in one transaction.
func (s *Store) userStep(ctx context.Context, p store.JobUserStepParams, apply func(x q, e store.ExecJob, eff store.Effects) error) (store.Job, error) {
	var j store.Job
	err := s.writeTx(ctx, func(x q) error {
		if _, err := s.jobGet(ctx, x, p.UserID, p.ID); err != nil {
			return err
		}
		e, err := s.execForUpdate(ctx, x, p.ID, 0)
		if err != nil {
			return err
		}
		eff, err := p.Decide(e)
		if err != nil {
			return err
		}
		if err := apply(x, e, eff); err != nil {
			return err
		}
		if err := s.effectsTx(ctx, x, p.ID, e.Attempt, eff, p.At); err != nil {
			return err
		}
		j, err = s.jobGet(ctx, x, p.UserID, p.ID)
		return err
	})
	return j, err
}

// JobPauseRequest pauses a queued job at once or records the request.
func (s *Store) JobPauseRequest(ctx context.Context, p store.JobUserStepParams) (store.Job, error) {
	return s.userStep(ctx, p, func(x q, e store.ExecJob, eff store.Effects) error {
		var err error
		switch {
		case eff.Status != e.Status:
			_, err = x.exec(ctx, "UPDATE training_jobs SET status = ?, current_stage = ?, pause_requested_at = NULL, updated_at = ? WHERE id = ? AND status = ?",
				eff.Status, eff.Stage, p.At, p.ID, e.Status)
		case e.PauseRequestedAt == nil:
			_, err = x.exec(ctx, "UPDATE training_jobs SET pause_requested_at = ?, updated_at = ? WHERE id = ?", p.At, p.At, p.ID)
		}
		return err
	})
}

// JobResume queues a paused job again.
func (s *Store) JobResume(ctx context.Context, p store.JobUserStepParams) (store.Job, error) {
	return s.userStep(ctx, p, func(x q, e store.ExecJob, eff store.Effects) error {
		_, err := x.exec(ctx, "UPDATE training_jobs SET status = ?, current_stage = ?, pause_requested_at = NULL, updated_at = ? WHERE id = ? AND status = ?",
			eff.Status, eff.Stage, p.At, p.ID, e.Status)
		return err
	})
}

// JobPark ends the attempt as paused: the checkpoint stays, no retry is
// counted, the attempt's time joins the run seconds.
func (s *Store) JobPark(ctx context.Context, p store.JobParkParams) (store.ExecJob, error) {
	return s.attemptStep(ctx, p.JobID, p.Attempt, p.Decide, func(x q, e *store.ExecJob, eff store.Effects) error {
		if _, err := x.exec(ctx, `UPDATE training_jobs SET status = ?, current_stage = ?, run_seconds = ?, current_cost = ?, attempt_started_at = NULL,
			lease_expires_at = NULL, job_token_hash = NULL, agent_id = NULL, pause_requested_at = NULL, updated_at = ? WHERE id = ?`,
			eff.Status, eff.Stage, eff.RunSeconds, eff.Cost, p.Now, p.JobID); err != nil {
			return err
		}
		e.Status = eff.Status
		return s.effectsTx(ctx, x, p.JobID, e.Attempt, eff, p.Now)
	})
}
