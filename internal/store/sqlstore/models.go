package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
)

const modelCols = `m.id, m.user_id, m.job_id, m.dataset_id, m.name, m.version, m.description, m.status, m.quality_metrics, m.training_summary,
	m.configuration, m.artifacts, m.parent_model_id, m.created_at, m.updated_at, d.name, j.base_model`

const modelFrom = " FROM model_artifacts m JOIN datasets d ON d.id = m.dataset_id JOIN training_jobs j ON j.id = m.job_id "

func scanModel(sc interface{ Scan(...any) error }) (store.Model, error) {
	var m store.Model
	var desc, version, status, parent, dname, base string
	err := sc.Scan(&m.ID, &m.UserID, &m.JobID, &m.DatasetID, &m.Name, nstr{&version}, nstr{&desc}, nstr{&status}, doc[jobdoc.Quality]{&m.QualityMetrics},
		doc[jobdoc.Summary]{&m.TrainingSummary}, doc[jobdoc.Configuration]{&m.Configuration}, doc[jobdoc.Artifacts]{&m.Artifacts}, nstr{&parent}, ts{&m.CreatedAt}, ts{&m.UpdatedAt}, nstr{&dname}, nstr{&base})
	m.Version, m.Status, m.Description, m.ParentModelID, m.DatasetName, m.BaseModel = version, status, strPtr(desc), strPtr(parent), dname, base
	return m, err
}

// ModelList pages the user's models, newest first or by validation loss.
func (s *Store) ModelList(ctx context.Context, p store.ModelListParams) ([]store.Model, int, error) {
	order := " ORDER BY m.created_at DESC, m.id"
	if p.Sort == "quality" {
		// By ModelSortKey, best first across every page; unrated models last.
		key := "CASE WHEN json_type(m.quality_metrics, '$." + store.ModelSortKey + "') IN ('integer', 'real') THEN json_extract(m.quality_metrics, '$." + store.ModelSortKey + "') END"
		if s.d.Name == "postgres" {
			key = "CASE WHEN jsonb_typeof(m.quality_metrics->'" + store.ModelSortKey + "') = 'number' THEN (m.quality_metrics->>'" + store.ModelSortKey + "')::float8 END"
		}
		order = " ORDER BY " + key + " DESC NULLS LAST, m.created_at DESC, m.id"
	}
	var out []store.Model
	var total int
	err := s.readTx(ctx, func(x q) error {
		if err := x.queryRow(ctx, "SELECT count(*) FROM model_artifacts m WHERE m.user_id = ? AND m.deleted_at IS NULL", p.UserID).Scan(&total); err != nil {
			return err
		}
		rows, err := x.query(ctx, "SELECT "+modelCols+modelFrom+"WHERE m.user_id = ? AND m.deleted_at IS NULL"+order+" LIMIT ? OFFSET ?", p.UserID, p.Limit, (p.Page-1)*p.Limit)
		out, err = collect(rows, err, scanModel)
		return err
	})
	return out, total, err
}

func (s *Store) modelGet(ctx context.Context, x q, userID, id string) (store.Model, error) {
	if !validID(id) {
		return store.Model{}, apperr.NotFound("model")
	}
	m, err := scanModel(x.queryRow(ctx, "SELECT "+modelCols+modelFrom+"WHERE m.id = ? AND m.user_id = ? AND m.deleted_at IS NULL", id, userID))
	if errors.Is(err, errNoRows) {
		return m, apperr.NotFound("model")
	}
	return m, err
}

// ModelGet loads one of the user's models.
func (s *Store) ModelGet(ctx context.Context, userID, id string) (store.Model, error) {
	return readOne(s, ctx, func(x q) (store.Model, error) { return s.modelGet(ctx, x, userID, id) })
}

// ModelUpdate renames, describes or archives a model.
func (s *Store) ModelUpdate(ctx context.Context, userID, id string, p store.ModelPatch) (store.Model, error) {
	var m store.Model
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if m, err = s.modelGet(ctx, x, userID, id); err != nil {
			return err
		}
		if p.Name != nil {
			m.Name = *p.Name
		}
		if p.Description != nil {
			m.Description = p.Description
		}
		if p.Status != nil {
			m.Status = *p.Status
		}
		if m.UpdatedAt, err = stamp(p.At, "ModelPatch"); err != nil {
			return err
		}
		_, err = x.exec(ctx, "UPDATE model_artifacts SET name = ?, description = ?, status = ?, updated_at = ? WHERE id = ? AND user_id = ?",
			m.Name, m.Description, m.Status, m.UpdatedAt, id, userID)
		return err
	})
	return m, err
}

// ModelSoftDelete hides a model (its files are removed by the caller).
func (s *Store) ModelSoftDelete(ctx context.Context, userID, id string, at time.Time) (store.Model, error) {
	var m store.Model
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if m, err = s.modelGet(ctx, x, userID, id); err != nil {
			return err
		}
		_, err = x.exec(ctx, "UPDATE model_artifacts SET deleted_at = ?, updated_at = ? WHERE id = ? AND user_id = ?", at, at, id, userID)
		return err
	})
	return m, err
}
