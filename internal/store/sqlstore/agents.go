package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
)

// AgentList lists non-revoked agents with their current job and the
// number of jobs they finished.
func (s *Store) AgentList(ctx context.Context) ([]store.AgentSummary, error) {
	var out []store.AgentSummary
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, `SELECT a.id, a.name, a.capabilities, a.version, a.hostname, a.last_seen_at, a.created_at,
				cur.id, cur.status, cur.current_stage, cur.lease_expires_at,
				(SELECT COUNT(*) FROM training_jobs d WHERE d.agent_id = a.id AND d.status IN ('completed', 'failed', 'cancelled'))
			FROM agents a
			LEFT JOIN training_jobs cur ON cur.id = (SELECT j.id FROM training_jobs j WHERE j.agent_id = a.id AND j.status IN ('initializing', 'running')
				ORDER BY j.updated_at DESC LIMIT 1)
			WHERE a.revoked_at IS NULL
			ORDER BY a.created_at DESC, a.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a store.AgentSummary
			var jobID, status, stage string
			if err := rows.Scan(&a.ID, &a.Name, optDoc[jobdoc.Capabilities]{&a.Capabilities}, nstr{&a.Version}, nstr{&a.Hostname}, nts{&a.LastSeenAt}, ts{&a.CreatedAt},
				nstr{&jobID}, nstr{&status}, nstr{&stage}, nts{&a.CurrentJobLease}, &a.JobsRun); err != nil {
				return err
			}
			if jobID != "" {
				a.CurrentJobID, a.CurrentJobStatus, a.CurrentJobStage = &jobID, status, stage
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}

// AgentRevoke revokes an agent token.
func (s *Store) AgentRevoke(ctx context.Context, id string, at time.Time) error {
	if !validID(id) {
		return apperr.NotFound("agent")
	}
	now, err := stamp(at, "AgentRevoke")
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE agents SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.NotFound("agent")
		}
		return nil
	})
}

// OperatorIs reports whether the user is an operator.
func (s *Store) OperatorIs(ctx context.Context, userID string) (bool, error) {
	if !validID(userID) {
		return false, nil
	}
	var one int
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT 1 FROM brightrun_operators WHERE user_id = ?", userID).Scan(&one)
	})
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	return err == nil, err
}

// OperatorGrant makes the user an operator (idempotent).
func (s *Store) OperatorGrant(ctx context.Context, userID string, at time.Time) error {
	now, err := stamp(at, "OperatorGrant")
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(x q) error { return s.grantTx(ctx, x, userID, store.OperatorAlways, now) })
}

func (s *Store) grantTx(ctx context.Context, x q, userID string, g store.OperatorGrant, at time.Time) error {
	switch g {
	case store.OperatorAlways:
		_, err := x.exec(ctx, "INSERT INTO brightrun_operators (user_id, created_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING", userID, at)
		return err
	case store.OperatorIfNone:
		var n int
		if err := x.queryRow(ctx, "SELECT COUNT(*) FROM brightrun_operators").Scan(&n); err != nil || n > 0 {
			return err
		}
		return s.grantTx(ctx, x, userID, store.OperatorAlways, at)
	}
	return nil
}

// JobQueuePosition counts the queued jobs for the same GPU type up to and
// including this one, in claim order (queued_at, id).
func (s *Store) JobQueuePosition(ctx context.Context, jobID string) (int, error) {
	if !validID(jobID) {
		return 0, apperr.NotFound("training job")
	}
	var n int
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, `SELECT COUNT(*) FROM training_jobs o, training_jobs j
			WHERE j.id = ? AND j.status = 'queued' AND o.status = 'queued' AND o.gpu_type = j.gpu_type
			AND (o.queued_at < j.queued_at OR (o.queued_at = j.queued_at AND o.id <= j.id))`, jobID).Scan(&n)
	})
	return n, err
}
