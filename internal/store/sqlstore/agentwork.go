package sqlstore

import (
	"context"
	"errors"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/store"
)

const workCols = "id, kind, user_id, dataset_id, base_model, status, agent_id, attempts, lease_expires_at, error, created_at, updated_at"

func scanWork(sc interface{ Scan(...any) error }) (store.AgentWork, error) {
	var w store.AgentWork
	err := sc.Scan(&w.ID, &w.Kind, &w.UserID, nstr{&w.DatasetID}, &w.BaseModel, &w.Status, nstr{&w.AgentID}, &w.Attempts, nts{&w.LeaseExpiresAt},
		nstr{&w.Error}, ts{&w.CreatedAt}, ts{&w.UpdatedAt})
	return w, err
}

// AgentWorkEnqueue queues work for (kind, dataset, model) unless it is open,
// done, or failed recently; it returns the open work.
func (s *Store) AgentWorkEnqueue(ctx context.Context, p store.AgentWorkEnqueueParams) (store.AgentWork, bool, error) {
	if !validID(p.ID) || !validID(p.DatasetID) || !validID(p.UserID) {
		return store.AgentWork{}, false, apperr.NotFound("dataset")
	}
	at, err := stamp(p.At, "AgentWorkEnqueue")
	if err != nil {
		return store.AgentWork{}, false, err
	}
	var w store.AgentWork
	var ok bool
	enqueue := func(x q) error {
		var n int
		err := x.queryRow(ctx, "SELECT COUNT(*) FROM dataset_model_profiles WHERE dataset_id = ? AND base_model = ?", p.DatasetID, p.BaseModel).Scan(&n)
		if err != nil || n > 0 {
			return err
		}
		w, err = scanWork(x.queryRow(ctx, "SELECT "+workCols+` FROM agent_work WHERE kind = ? AND dataset_id = ? AND base_model = ?
			AND (status IN ('queued', 'running') OR (status = 'failed' AND updated_at >= ?)) ORDER BY created_at DESC, id LIMIT 1`,
			p.Kind, p.DatasetID, p.BaseModel, p.RetryFailedAfter))
		if err == nil {
			ok = w.Status == store.WorkQueued || w.Status == store.WorkRunning
			return nil
		}
		if !errors.Is(err, errNoRows) {
			return err
		}
		if _, err := x.exec(ctx, `INSERT INTO agent_work (id, kind, user_id, dataset_id, base_model, status, attempts, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?)`, p.ID, p.Kind, p.UserID, p.DatasetID, p.BaseModel, at, at); err != nil {
			return err
		}
		w = store.AgentWork{ID: p.ID, Kind: p.Kind, UserID: p.UserID, DatasetID: p.DatasetID, BaseModel: p.BaseModel, Status: store.WorkQueued, CreatedAt: at, UpdatedAt: at}
		ok = true
		return nil
	}
	err = s.writeTx(ctx, enqueue)
	if IsUnique(err) {
		// Another replica queued it between our read and insert: return theirs.
		err = s.writeTx(ctx, enqueue)
	}
	return w, ok, err
}

// AgentWorkClaim hands the oldest claimable work to the agent.
func (s *Store) AgentWorkClaim(ctx context.Context, p store.AgentWorkClaimParams) (store.AgentWork, bool, error) {
	var w store.AgentWork
	found := false
	if len(p.Kinds) == 0 {
		return w, false, nil
	}
	err := s.writeTx(ctx, func(x q) error {
		// Work whose lease expired too often fails for good (and stops blocking the pair).
		if _, err := x.exec(ctx, `UPDATE agent_work SET status = 'failed', error = 'no agent finished it (the lease expired on every attempt)', updated_at = ?
			WHERE status = 'running' AND lease_expires_at < ? AND attempts >= ?`, p.Now, p.Now, p.MaxAttempts); err != nil {
			return err
		}
		where := "(status = 'queued' OR (status = 'running' AND lease_expires_at < ?)) AND attempts < ? AND kind IN (" + marks(len(p.Kinds)) + ")"
		args := []any{p.Now, p.MaxAttempts}
		for _, k := range p.Kinds {
			args = append(args, k)
		}
		if len(p.BaseModels) > 0 {
			where += " AND base_model IN (" + marks(len(p.BaseModels)) + ")"
			for _, m := range p.BaseModels {
				args = append(args, m)
			}
		}
		if len(p.ExportFormats) > 0 {
			where += " AND (kind <> 'export' OR EXISTS (SELECT 1 FROM model_exports e WHERE e.work_id = agent_work.id AND e.format IN (" + marks(len(p.ExportFormats)) + ")))"
			for _, f := range p.ExportFormats {
				args = append(args, f)
			}
		}
		lock := ""
		if s.d.Name == "postgres" {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		pre, err := scanWork(x.queryRow(ctx, "SELECT "+workCols+" FROM agent_work WHERE "+where+" ORDER BY created_at, id LIMIT 1"+lock, args...))
		if errors.Is(err, errNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := x.exec(ctx, `UPDATE agent_work SET status = 'running', agent_id = ?, attempts = attempts + 1, lease_expires_at = ?, updated_at = ?
			WHERE id = ? AND status = ? AND attempts = ?`, p.AgentID, p.Now.Add(p.Lease), p.Now, pre.ID, pre.Status, pre.Attempts)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		if pre.Kind == store.WorkExport {
			// The export shows who makes it (its owner cannot read agents).
			if _, err := x.exec(ctx, "UPDATE model_exports SET agent_name = (SELECT name FROM agents WHERE id = ?) WHERE work_id = ?", p.AgentID, pre.ID); err != nil {
				return err
			}
		}
		w, err = scanWork(x.queryRow(ctx, "SELECT "+workCols+" FROM agent_work WHERE id = ?", pre.ID))
		found = err == nil
		return err
	})
	return w, found, err
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// AgentWorkGet loads running work held by the agent.
func (s *Store) AgentWorkGet(ctx context.Context, id, agentID string) (store.AgentWork, error) {
	if !validID(id) || !validID(agentID) {
		return store.AgentWork{}, apperr.NotFound("agent work")
	}
	w, err := readOne(s, ctx, func(x q) (store.AgentWork, error) {
		return scanWork(x.queryRow(ctx, "SELECT "+workCols+" FROM agent_work WHERE id = ? AND agent_id = ? AND status = 'running'", id, agentID))
	})
	if errors.Is(err, errNoRows) {
		return w, apperr.NotFound("agent work")
	}
	return w, err
}

// finishWork ends running work held by agentID in x (404 otherwise).
func finishWork(ctx context.Context, x q, id, agentID, status, msg string, at any) (store.AgentWork, error) {
	w, err := scanWork(x.queryRow(ctx, "SELECT "+workCols+" FROM agent_work WHERE id = ? AND agent_id = ? AND status = 'running'", id, agentID))
	if errors.Is(err, errNoRows) {
		return w, apperr.NotFound("agent work")
	}
	if err != nil {
		return w, err
	}
	_, err = x.exec(ctx, "UPDATE agent_work SET status = ?, error = ?, lease_expires_at = NULL, updated_at = ? WHERE id = ?", status, nullIfEmpty(msg), at, id)
	return w, err
}

// AgentWorkComplete stores the profile and completes the work.
func (s *Store) AgentWorkComplete(ctx context.Context, p store.AgentWorkCompleteParams) error {
	if !validID(p.ID) || !validID(p.AgentID) {
		return apperr.NotFound("agent work")
	}
	at, err := stamp(p.At, "AgentWorkComplete")
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(x q) error {
		w, err := finishWork(ctx, x, p.ID, p.AgentID, store.WorkCompleted, "", at)
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, "DELETE FROM dataset_model_profiles WHERE dataset_id = ? AND base_model = ?", w.DatasetID, w.BaseModel); err != nil {
			return err
		}
		_, err = x.exec(ctx, "INSERT INTO dataset_model_profiles (dataset_id, base_model, user_id, token_profile, created_at) VALUES (?, ?, ?, ?, ?)",
			w.DatasetID, w.BaseModel, w.UserID, docArg(p.Profile), at)
		return err
	})
}

// AgentWorkFail fails the work.
func (s *Store) AgentWorkFail(ctx context.Context, p store.AgentWorkFailParams) error {
	if !validID(p.ID) || !validID(p.AgentID) {
		return apperr.NotFound("agent work")
	}
	at, err := stamp(p.At, "AgentWorkFail")
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(x q) error {
		_, err := finishWork(ctx, x, p.ID, p.AgentID, store.WorkFailed, p.Error, at)
		return err
	})
}

// AgentWorkLatest is the user's newest work for the pair.
func (s *Store) AgentWorkLatest(ctx context.Context, userID, kind, datasetID, baseModel string) (store.AgentWork, bool, error) {
	if !validID(userID) || !validID(datasetID) {
		return store.AgentWork{}, false, nil
	}
	w, err := readOne(s, ctx, func(x q) (store.AgentWork, error) {
		return scanWork(x.queryRow(ctx, "SELECT "+workCols+` FROM agent_work WHERE user_id = ? AND kind = ? AND dataset_id = ? AND base_model = ?
			ORDER BY created_at DESC, id LIMIT 1`, userID, kind, datasetID, baseModel))
	})
	if errors.Is(err, errNoRows) {
		return w, false, nil
	}
	return w, err == nil, err
}

// DatasetModelProfile reads the user's exact profile for (dataset, model).
func (s *Store) DatasetModelProfile(ctx context.Context, userID, datasetID, baseModel string) (*validate.TokenProfile, error) {
	if !validID(userID) || !validID(datasetID) {
		return nil, nil
	}
	var p *validate.TokenProfile
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT token_profile FROM dataset_model_profiles WHERE user_id = ? AND dataset_id = ? AND base_model = ?",
			userID, datasetID, baseModel).Scan(optDoc[validate.TokenProfile]{&p})
	})
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	return p, err
}
