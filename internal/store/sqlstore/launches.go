package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

const agentCols = "id, name, capabilities, version, hostname, last_seen_at, created_at, revoked_at, job_id"

func agentDest(a *store.Agent) []any {
	return []any{&a.ID, &a.Name, optDoc[jobdoc.Capabilities]{&a.Capabilities}, nstr{&a.Version}, nstr{&a.Hostname}, nts{&a.LastSeenAt}, ts{&a.CreatedAt}, nts{&a.RevokedAt}, nstr{&a.JobID}}
}

const launchCols = `l.id, l.job_id, l.attempt, l.launcher, l.kind, l.agent_id, l.external_id, l.logs_url, l.time_limit_seconds, l.state,
	l.end_reason, l.created_at, l.submitted_at, l.claimed_at, l.ended_at, l.updated_at`

func scanLaunch(sc interface{ Scan(...any) error }) (store.Launch, error) {
	var l store.Launch
	err := sc.Scan(&l.ID, &l.JobID, &l.Attempt, &l.Launcher, &l.Kind, &l.AgentID, nstr{&l.ExternalID}, nstr{&l.LogsURL}, &l.TimeLimitSeconds, &l.State,
		nstr{&l.EndReason}, ts{&l.CreatedAt}, nts{&l.SubmittedAt}, nts{&l.ClaimedAt}, nts{&l.EndedAt}, ts{&l.UpdatedAt})
	return l, err
}

// LaunchCreate inserts the launch and its one-job agent.
func (s *Store) LaunchCreate(ctx context.Context, p store.LaunchCreateParams) (store.Launch, error) {
	at := p.At.UTC().Truncate(time.Millisecond)
	l := store.Launch{ID: p.ID, JobID: p.JobID, Attempt: p.Attempt, Launcher: p.Launcher, Kind: p.Kind, AgentID: uuid.NewString(),
		TimeLimitSeconds: p.TimeLimitSeconds, State: store.LaunchRequested, CreatedAt: at, UpdatedAt: at}
	if !validID(p.ID) || !validID(p.JobID) {
		return l, apperr.NotFound("training job")
	}
	err := s.writeTx(ctx, func(x q) error {
		if _, err := x.exec(ctx, "INSERT INTO agents (id, name, token_hash, created_at, job_id) VALUES (?, ?, ?, ?, ?)",
			l.AgentID, p.AgentName, p.TokenHash, at, p.JobID); err != nil {
			return err
		}
		_, err := x.exec(ctx, `INSERT INTO launches (id, job_id, attempt, launcher, kind, agent_id, time_limit_seconds, state, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.ID, l.JobID, l.Attempt, l.Launcher, l.Kind, l.AgentID, l.TimeLimitSeconds, l.State, at, at)
		return err
	})
	if IsUnique(err) {
		return l, apperr.Conflict("job %s already has an open launch", p.JobID)
	}
	return l, err
}

// launchUpdate runs one UPDATE on an open launch; a missing or ended one is a 404.
func (s *Store) launchUpdate(ctx context.Context, id, set string, args ...any) error {
	if !validID(id) {
		return apperr.NotFound("launch")
	}
	return s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE launches SET "+set+" WHERE id = ? AND state <> 'ended'", append(args, id)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return apperr.NotFound("launch")
		}
		return nil
	})
}

// LaunchSubmitted records the engine's id and logs link.
func (s *Store) LaunchSubmitted(ctx context.Context, p store.LaunchSubmittedParams) error {
	return s.launchUpdate(ctx, p.ID, "state = 'submitted', external_id = ?, logs_url = ?, submitted_at = ?, updated_at = ?",
		p.ExternalID, nullIfEmpty(p.LogsURL), p.At, p.At)
}

// LaunchClaimed records when the launch's agent claimed the job.
func (s *Store) LaunchClaimed(ctx context.Context, id string, at time.Time) error {
	return s.launchUpdate(ctx, id, "state = 'claimed', claimed_at = ?, updated_at = ?", at, at)
}

// LaunchEnd ends the launch and revokes its agent's token.
func (s *Store) LaunchEnd(ctx context.Context, p store.LaunchEndParams) error {
	if !validID(p.ID) {
		return apperr.NotFound("launch")
	}
	return s.writeTx(ctx, func(x q) error {
		var agentID string
		err := x.queryRow(ctx, "SELECT agent_id FROM launches WHERE id = ? AND state <> 'ended'", p.ID).Scan(&agentID)
		if errors.Is(err, errNoRows) {
			return apperr.NotFound("launch")
		}
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, "UPDATE launches SET state = 'ended', end_reason = ?, ended_at = ?, updated_at = ? WHERE id = ?", p.Reason, p.At, p.At, p.ID); err != nil {
			return err
		}
		_, err = x.exec(ctx, "UPDATE agents SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", p.At, agentID)
		return err
	})
}

// LaunchesOpen lists launches not ended.
func (s *Store) LaunchesOpen(ctx context.Context) ([]store.Launch, error) {
	var out []store.Launch
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+launchCols+" FROM launches l WHERE l.state <> 'ended' ORDER BY l.created_at, l.id")
		out, err = collect(rows, err, scanLaunch)
		return err
	})
	return out, err
}

// LaunchList lists a user's (or, with no user, a job's) launches, newest first.
func (s *Store) LaunchList(ctx context.Context, p store.LaunchListParams) ([]store.Launch, error) {
	if p.Limit <= 0 || p.Limit > 500 {
		p.Limit = 100
	}
	where, args := "1 = 1", []any{}
	if p.UserID != "" {
		if !validID(p.UserID) {
			return nil, nil
		}
		where, args = where+" AND j.user_id = ?", append(args, p.UserID)
	}
	if p.JobID != "" {
		if !validID(p.JobID) {
			return nil, nil
		}
		where, args = where+" AND l.job_id = ?", append(args, p.JobID)
	}
	if p.UserID == "" && p.JobID == "" {
		return nil, apperr.Validation("validation failed", map[string]string{"job_id": "name a user or a job"})
	}
	var out []store.Launch
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+launchCols+" FROM launches l JOIN training_jobs j ON j.id = l.job_id WHERE "+where+
			" ORDER BY l.created_at DESC, l.id LIMIT ?", append(args, p.Limit)...)
		out, err = collect(rows, err, scanLaunch)
		return err
	})
	return out, err
}

// JobsQueued lists queued jobs, oldest first.
func (s *Store) JobsQueued(ctx context.Context, limit int) ([]store.ExecJob, error) {
	var out []store.ExecJob
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+execCols+jobFrom+"WHERE j.status = 'queued' ORDER BY j.queued_at, j.id LIMIT ?", limit)
		out, err = collect(rows, err, scanExec)
		return err
	})
	return out, err
}

// AgentsOnline lists non-revoked agents seen since, with whether each holds an active job.
func (s *Store) AgentsOnline(ctx context.Context, since time.Time) ([]store.OnlineAgent, error) {
	var out []store.OnlineAgent
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+agentCols+`, EXISTS (SELECT 1 FROM training_jobs j WHERE j.agent_id = agents.id AND j.status IN ('initializing', 'running'))
			FROM agents WHERE revoked_at IS NULL AND last_seen_at >= ? ORDER BY last_seen_at DESC`, since)
		out, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (store.OnlineAgent, error) {
			var a store.OnlineAgent
			err := sc.Scan(append(agentDest(&a.Agent), &a.Busy)...)
			return a, err
		})
		return err
	})
	return out, err
}
