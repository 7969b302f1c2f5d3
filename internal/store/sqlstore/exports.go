package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

const exportSelect = `SELECT e.id, e.user_id, e.model_id, e.work_id, e.format, e.dtype, e.gguf_type, e.file_name, e.storage_path, e.size_bytes, e.sha256,
	e.created_at, e.ready_at, w.base_model, w.status, w.error, w.agent_id, e.agent_name, w.attempts, w.updated_at
	FROM model_exports e JOIN agent_work w ON w.id = e.work_id`

func scanExport(sc interface{ Scan(...any) error }) (store.ModelExport, error) {
	var e store.ModelExport
	var size *int64
	err := sc.Scan(&e.ID, &e.UserID, &e.ModelID, &e.WorkID, &e.Format, &e.Dtype, &e.GGUFType, nstr{&e.FileName}, nstr{&e.StoragePath}, &size, nstr{&e.SHA256},
		ts{&e.CreatedAt}, nts{&e.ReadyAt}, &e.BaseModel, &e.Status, nstr{&e.Error}, nstr{&e.AgentID}, nstr{&e.AgentName}, &e.Attempts, ts{&e.UpdatedAt})
	if size != nil {
		e.SizeBytes = *size
	}
	return e, err
}

// ModelExportCreate returns the live export of the key, queued again when
// it failed, or creates it with its queued work.
func (s *Store) ModelExportCreate(ctx context.Context, p store.ModelExportCreateParams) (store.ModelExport, bool, error) {
	if !validID(p.ID) || !validID(p.WorkID) || !validID(p.UserID) || !validID(p.ModelID) {
		return store.ModelExport{}, false, apperr.NotFound("model")
	}
	at, err := stamp(p.At, "ModelExportCreate")
	if err != nil {
		return store.ModelExport{}, false, err
	}
	var e store.ModelExport
	var queued bool
	create := func(x q) error {
		e, err = scanExport(x.queryRow(ctx, exportSelect+` WHERE e.user_id = ? AND e.model_id = ? AND e.format = ? AND e.dtype = ? AND e.gguf_type = ?
			AND e.deleted_at IS NULL`, p.UserID, p.ModelID, p.Format, p.Dtype, p.GGUFType))
		if err == nil {
			if e.Status != store.WorkFailed {
				queued = false
				return nil
			}
			// Asked again after a failure: the same export, queued again.
			if _, err := x.exec(ctx, `UPDATE agent_work SET status = 'queued', attempts = 0, error = NULL, agent_id = NULL, lease_expires_at = NULL,
				updated_at = ? WHERE id = ?`, at, e.WorkID); err != nil {
				return err
			}
			queued = true
			e, err = scanExport(x.queryRow(ctx, exportSelect+" WHERE e.id = ?", e.ID))
			return err
		}
		if !errors.Is(err, errNoRows) {
			return err
		}
		if _, err := x.exec(ctx, `INSERT INTO agent_work (id, kind, user_id, base_model, status, attempts, created_at, updated_at)
			VALUES (?, 'export', ?, ?, 'queued', 0, ?, ?)`, p.WorkID, p.UserID, p.BaseModel, at, at); err != nil {
			return err
		}
		if _, err := x.exec(ctx, `INSERT INTO model_exports (id, user_id, model_id, work_id, format, dtype, gguf_type, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, p.UserID, p.ModelID, p.WorkID, p.Format, p.Dtype, p.GGUFType, at); err != nil {
			return err
		}
		queued = true
		e, err = scanExport(x.queryRow(ctx, exportSelect+" WHERE e.id = ?", p.ID))
		return err
	}
	err = s.writeTx(ctx, create)
	if IsUnique(err) {
		// Another request created it between our read and insert: return theirs.
		err = s.writeTx(ctx, create)
	}
	return e, queued, err
}

// ModelExportList lists a model's live exports.
func (s *Store) ModelExportList(ctx context.Context, userID, modelID string) ([]store.ModelExport, error) {
	if !validID(userID) || !validID(modelID) {
		return nil, nil
	}
	var out []store.ModelExport
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, exportSelect+` WHERE e.user_id = ? AND e.model_id = ? AND e.deleted_at IS NULL ORDER BY e.created_at, e.id`, userID, modelID)
		out, err = collect(rows, err, scanExport)
		return err
	})
	return out, err
}

// ModelExportGet loads one live export of the user's model.
func (s *Store) ModelExportGet(ctx context.Context, userID, modelID, id string) (store.ModelExport, error) {
	if !validID(userID) || !validID(modelID) || !validID(id) {
		return store.ModelExport{}, apperr.NotFound("export")
	}
	e, err := readOne(s, ctx, func(x q) (store.ModelExport, error) {
		return scanExport(x.queryRow(ctx, exportSelect+` WHERE e.id = ? AND e.user_id = ? AND e.model_id = ? AND e.deleted_at IS NULL`, id, userID, modelID))
	})
	if errors.Is(err, errNoRows) {
		return e, apperr.NotFound("export")
	}
	return e, err
}

// ModelExportDelete marks the export deleted and fails its open work.
func (s *Store) ModelExportDelete(ctx context.Context, userID, modelID, id string, at time.Time) (store.ModelExport, error) {
	var e store.ModelExport
	if !validID(userID) || !validID(modelID) || !validID(id) {
		return e, apperr.NotFound("export")
	}
	at, err := stamp(at, "ModelExportDelete")
	if err != nil {
		return e, err
	}
	err = s.writeTx(ctx, func(x q) error {
		e, err = scanExport(x.queryRow(ctx, exportSelect+` WHERE e.id = ? AND e.user_id = ? AND e.model_id = ? AND e.deleted_at IS NULL`, id, userID, modelID))
		if errors.Is(err, errNoRows) {
			return apperr.NotFound("export")
		}
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, "UPDATE model_exports SET deleted_at = ? WHERE id = ?", at, id); err != nil {
			return err
		}
		_, err = x.exec(ctx, `UPDATE agent_work SET status = 'failed', error = 'the export was deleted', lease_expires_at = NULL, updated_at = ?
			WHERE id = ? AND status IN ('queued', 'running')`, at, e.WorkID)
		return err
	})
	return e, err
}

// ModelExportByWork loads the live export a work item makes.
func (s *Store) ModelExportByWork(ctx context.Context, workID string) (store.ModelExport, error) {
	if !validID(workID) {
		return store.ModelExport{}, apperr.NotFound("export")
	}
	e, err := readOne(s, ctx, func(x q) (store.ModelExport, error) {
		return scanExport(x.queryRow(ctx, exportSelect+" WHERE e.work_id = ? AND e.deleted_at IS NULL", workID))
	})
	if errors.Is(err, errNoRows) {
		return e, apperr.NotFound("export")
	}
	return e, err
}

// ModelExportFinish stores the result and completes the work.
func (s *Store) ModelExportFinish(ctx context.Context, p store.ModelExportFinishParams) error {
	if !validID(p.WorkID) || !validID(p.AgentID) {
		return apperr.NotFound("agent work")
	}
	at, err := stamp(p.At, "ModelExportFinish")
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(x q) error {
		if _, err := finishWork(ctx, x, p.WorkID, p.AgentID, store.WorkCompleted, "", at); err != nil {
			return err
		}
		res, err := x.exec(ctx, `UPDATE model_exports SET file_name = ?, storage_path = ?, size_bytes = ?, sha256 = ?, ready_at = ?
			WHERE work_id = ? AND deleted_at IS NULL`, p.FileName, p.StoragePath, p.SizeBytes, p.SHA256, at, p.WorkID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return apperr.NotFound("export")
		}
		return nil
	})
}
