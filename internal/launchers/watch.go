package launchers

import (
	"context"
	"fmt"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// watch moves each open launch on: claimed when its agent took the job,
// ended (and torn down) when the job no longer needs it.
func (s *Service) watch(ctx context.Context, open []store.Launch) {
	states := s.engineStates(ctx, open)
	for _, l := range open {
		if err := s.watchOne(ctx, l, states[l.ID]); err != nil && ctx.Err() == nil {
			s.Log.Error("launch watch", "launch", l.ID, "job", l.JobID, "err", err)
		}
	}
}

// engineStates asks each launcher once about its submitted launches.
func (s *Service) engineStates(ctx context.Context, open []store.Launch) map[string]State {
	byLauncher := map[string][]store.Launch{}
	for _, l := range open {
		if l.ExternalID != "" {
			byLauncher[l.Launcher] = append(byLauncher[l.Launcher], l)
		}
	}
	out := map[string]State{}
	for name, ls := range byLauncher {
		ln := s.Launchers[name]
		if ln == nil {
			continue
		}
		ids := make([]string, len(ls))
		for i, l := range ls {
			ids[i] = l.ExternalID
		}
		cctx, cancel := s.call(ctx)
		st, err := ln.States(cctx, ids)
		cancel()
		if err != nil {
			s.Log.Warn("launcher states", "launcher", name, "err", err)
			continue // unknown this tick: nothing is ended on a failed query
		}
		for _, l := range ls {
			if v, ok := st[l.ExternalID]; ok {
				out[l.ID] = v
			}
		}
	}
	return out
}

func finished(status string) bool {
	return status == store.JobCompleted || status == store.JobFailed || status == store.JobCancelled
}

func (s *Service) watchOne(ctx context.Context, l store.Launch, engine State) error {
	sys := store.AsSystem(ctx)
	j, err := s.Store.JobExec(sys, l.JobID)
	if apperr.Is(err, apperr.KindNotFound) {
		return s.teardown(ctx, l, engine, "the job is gone")
	}
	if err != nil {
		return err
	}
	mine := j.AgentID == l.AgentID && j.Attempt == l.Attempt
	if mine && l.State != store.LaunchClaimed {
		// Its agent claimed the job (perhaps even ended it) since the last tick.
		if err := s.claimed(ctx, &l, j); err != nil {
			return err
		}
	}
	switch {
	case finished(j.Status):
		if l.State == store.LaunchClaimed && engine != StateDone && !s.graceOver(j) {
			return nil // its agent reported the end and is exiting by itself (--exit-after-job)
		}
		return s.teardown(ctx, l, engine, "the job "+j.Status)
	case j.Status == store.JobQueued && j.Attempt == l.Attempt:
		// The attempt this launch was for ran and was requeued (the store
		// clears the job's agent then): its agent lost its lease or reported
		// a retryable failure. The next attempt gets a launch of its own.
		return s.teardown(ctx, l, engine, "the attempt ended and the job was requeued (lease lost or a retryable failure)")
	case l.State == store.LaunchClaimed && !mine:
		return s.teardown(ctx, l, engine, "the job moved to another attempt")
	case !mine && j.Attempt >= l.Attempt:
		return s.teardown(ctx, l, engine, "another agent claimed the job first")
	}
	if l.State == store.LaunchClaimed {
		return nil // its lease decides: a dead agent's job is requeued, then torn down above
	}
	switch {
	case engine == StateDone:
		return s.teardown(ctx, l, engine, "the agent exited before claiming the job")
	case s.Launchers[l.Launcher] == nil:
		return s.teardown(ctx, l, engine, "launcher "+l.Launcher+" is no longer configured")
	case l.State == store.LaunchRequested && s.now().Sub(l.CreatedAt) > 10*time.Minute:
		return s.teardown(ctx, l, engine, "the launch was never submitted (the server stopped while submitting it)")
	case l.SubmittedAt != nil && s.now().After(l.SubmittedAt.Add(time.Duration(l.TimeLimitSeconds)*time.Second)):
		return s.teardown(ctx, l, engine, "its time limit passed before it claimed the job")
	}
	return nil
}

// claimed records the claim of l's agent and writes the launch wait.
func (s *Service) claimed(ctx context.Context, l *store.Launch, j store.ExecJob) error {
	at := s.now()
	switch {
	case j.AttemptStartedAt != nil:
		at = *j.AttemptStartedAt
	case l.Attempt == 1 && j.StartedAt != nil: // the attempt already ended (the store clears its start)
		at = *j.StartedAt
	}
	if err := s.Store.LaunchClaimed(store.AsSystem(ctx), l.ID, at); apperr.Is(err, apperr.KindNotFound) {
		return nil // ended meanwhile by another reconciler
	} else if err != nil {
		return err
	}
	l.State, l.ClaimedAt = store.LaunchClaimed, &at
	wait := at.Sub(l.CreatedAt).Round(time.Second)
	queued := ""
	if l.Attempt == 1 && at.After(j.QueuedAt) {
		queued = fmt.Sprintf(", %s after the job was queued", at.Sub(j.QueuedAt).Round(time.Second))
	}
	return s.event(ctx, j.ID, l.Attempt, "info", fmt.Sprintf("the agent launched on %s claimed the job after a launch wait of %s%s (not billed: billing starts at the claim)",
		l.Launcher, wait, queued))
}

// graceOver reports whether the job ended more than ExitGrace ago.
func (s *Service) graceOver(j store.ExecJob) bool {
	g := s.ExitGrace
	if g <= 0 {
		g = 2 * time.Minute
	}
	return j.CompletedAt == nil || s.now().Sub(*j.CompletedAt) > g
}

// teardown stops the agent on its engine (unless the engine says it is
// done already) and ends the launch (revoking its
// one-job token).
func (s *Service) teardown(ctx context.Context, l store.Launch, engine State, reason string) error {
	sys := store.AsSystem(ctx)
	line := reason
	if ln := s.Launchers[l.Launcher]; ln != nil && l.ExternalID != "" && engine != StateDone {
		cctx, cancel := s.call(ctx)
		err := ln.Stop(cctx, l.ExternalID)
		cancel()
		if err != nil {
			s.Log.Warn("stopping a launched agent", "launcher", l.Launcher, "external_id", l.ExternalID, "err", err)
			line += fmt.Sprintf(" (stopping it failed: %v)", err)
		}
	}
	if err := s.Store.LaunchEnd(sys, store.LaunchEndParams{ID: l.ID, Reason: line, At: s.now()}); apperr.Is(err, apperr.KindNotFound) {
		return nil // another reconciler (a second replica) ended it first
	} else if err != nil {
		return err
	}
	s.Log.Info("launched agent torn down", "launcher", l.Launcher, "external_id", l.ExternalID, "reason", line)
	what := "the launch on " + l.Launcher
	if l.ExternalID != "" {
		what = fmt.Sprintf("the agent launched on %s (%s %s)", l.Launcher, externalNoun(l.Kind), l.ExternalID)
	}
	return s.event(ctx, l.JobID, l.Attempt, "info", fmt.Sprintf("%s ended: %s", what, line))
}
