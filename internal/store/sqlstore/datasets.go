package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

const datasetCols = `id, user_id, name, description, format, status, storage_bucket, storage_path, file_name, file_size,
	total_training_pairs, total_validation_pairs, total_tokens, avg_turns_per_conversation, avg_tokens_per_turn,
	training_ready, validated_at, validation_errors, sample_data, created_at, updated_at, deleted_at,
	statistics, validation_warnings, error_count, warning_count, validation_attempts`

func scanDataset(sc interface{ Scan(...any) error }) (store.Dataset, error) {
	var d store.Dataset
	var desc, format, status, bucket string
	var ready *bool
	err := sc.Scan(&d.ID, &d.UserID, &d.Name, nstr{&desc}, nstr{&format}, nstr{&status}, nstr{&bucket}, &d.StoragePath, &d.FileName, &d.FileSize,
		&d.TotalTrainingPairs, &d.TotalValidationPairs, &d.TotalTokens, &d.AvgTurnsPerConversation, &d.AvgTokensPerTurn,
		&ready, nts{&d.ValidatedAt}, doc[[]validate.Issue]{&d.ValidationErrors}, doc[[]validate.Example]{&d.SampleData}, ts{&d.CreatedAt}, ts{&d.UpdatedAt}, nts{&d.DeletedAt},
		optDoc[validate.Stats]{&d.Statistics}, doc[[]validate.Issue]{&d.ValidationWarnings}, &d.ErrorCount, &d.WarningCount, &d.ValidationAttempts)
	if desc != "" {
		d.Description = &desc
	}
	d.Format, d.Status, d.StorageBucket = format, status, bucket
	d.TrainingReady = ready != nil && *ready
	return d, err
}

func validID(id string) bool { _, err := uuid.Parse(id); return err == nil }

// DatasetCreate inserts a dataset in status uploading.
func (s *Store) DatasetCreate(ctx context.Context, p store.DatasetCreateParams) (store.Dataset, error) {
	now, err := stamp(p.At, "DatasetCreateParams")
	if err != nil {
		return store.Dataset{}, err
	}
	err = s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO datasets (id, user_id, name, description, format, status, storage_bucket, storage_path, file_name, file_size, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'uploading', 'lora-datasets', ?, ?, ?, ?, ?)`,
			p.ID, p.UserID, p.Name, p.Description, p.Format, p.StoragePath, p.FileName, p.FileSize, now, now)
		return err
	})
	if IsUnique(err) {
		return store.Dataset{}, apperr.Conflict("a dataset with this storage path already exists")
	}
	if err != nil {
		return store.Dataset{}, err
	}
	return s.DatasetGet(ctx, p.UserID, p.ID)
}

func (s *Store) datasetGet(ctx context.Context, x q, userID, id string) (store.Dataset, error) {
	if !validID(id) {
		return store.Dataset{}, apperr.NotFound("dataset")
	}
	d, err := scanDataset(x.queryRow(ctx, "SELECT "+datasetCols+" FROM datasets WHERE id = ? AND user_id = ? AND deleted_at IS NULL", id, userID))
	if errors.Is(err, errNoRows) {
		return d, apperr.NotFound("dataset")
	}
	return d, err
}

// DatasetGet loads one of the user's datasets.
func (s *Store) DatasetGet(ctx context.Context, userID, id string) (store.Dataset, error) {
	return readOne(s, ctx, func(x q) (store.Dataset, error) { return s.datasetGet(ctx, x, userID, id) })
}

// likeEscape escapes LIKE wildcards so search text matches literally.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// DatasetList pages through the user's datasets, newest first.
func (s *Store) DatasetList(ctx context.Context, p store.DatasetListParams) ([]store.Dataset, int, error) {
	where := "user_id = ? AND deleted_at IS NULL"
	args := []any{p.UserID}
	if p.Status != "" {
		where += " AND status = ?"
		args = append(args, p.Status)
	}
	if p.Search != "" {
		where += " AND name " + s.d.ILike + ` ? ESCAPE '\'`
		args = append(args, "%"+likeEscape(p.Search)+"%")
	}
	var out []store.Dataset
	var total int
	err := s.readTx(ctx, func(x q) error {
		if err := x.queryRow(ctx, "SELECT count(*) FROM datasets WHERE "+where, args...).Scan(&total); err != nil {
			return err
		}
		rows, err := x.query(ctx, "SELECT "+datasetCols+" FROM datasets WHERE "+where+" ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
			append(args, p.Limit, (p.Page-1)*p.Limit)...)
		out, err = collect(rows, err, scanDataset)
		return err
	})
	return out, total, err
}

// DatasetUpdate changes name and/or description.
func (s *Store) DatasetUpdate(ctx context.Context, userID, id string, p store.DatasetPatch) (store.Dataset, error) {
	var d store.Dataset
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if d, err = s.datasetGet(ctx, x, userID, id); err != nil {
			return err
		}
		if p.Name != nil {
			d.Name = *p.Name
		}
		if p.Description != nil {
			d.Description = p.Description
		}
		now, err := stamp(p.At, "DatasetPatch")
		if err != nil {
			return err
		}
		_, err = x.exec(ctx, "UPDATE datasets SET name = ?, description = ?, updated_at = ? WHERE id = ? AND user_id = ?", d.Name, d.Description, now, id, userID)
		d.UpdatedAt = now
		return err
	})
	return d, err
}

// DatasetStartValidation moves an uploaded dataset to validating.
func (s *Store) DatasetStartValidation(ctx context.Context, userID, id string, at time.Time) (store.Dataset, error) {
	var d store.Dataset
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if d, err = s.datasetGet(ctx, x, userID, id); err != nil {
			return err
		}
		switch d.Status {
		case store.DatasetValidating, store.DatasetReady, store.DatasetError:
			return nil // confirming twice is harmless
		}
		_, err = x.exec(ctx, "UPDATE datasets SET status = 'validating', validation_lease_until = NULL, updated_at = ? WHERE id = ? AND user_id = ? AND status = 'uploading'",
			at.UTC(), id, userID)
		d.Status = store.DatasetValidating
		return err
	})
	return d, err
}

// DatasetSoftDelete marks the dataset deleted unless an active job uses it.
func (s *Store) DatasetSoftDelete(ctx context.Context, userID, id string, at time.Time) (store.Dataset, error) {
	var d store.Dataset
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if d, err = s.datasetGet(ctx, x, userID, id); err != nil {
			return err
		}
		var active int
		if err := x.queryRow(ctx, "SELECT count(*) FROM training_jobs WHERE dataset_id = ? AND status IN ('queued', 'initializing', 'running', 'paused')", id).Scan(&active); err != nil {
			return err
		}
		if active > 0 {
			return apperr.Conflict("dataset %q is used by %d queued or running (or paused) training job(s): cancel them or wait until they finish, then delete it", d.Name, active)
		}
		_, err = x.exec(ctx, "UPDATE datasets SET deleted_at = ?, updated_at = ? WHERE id = ? AND user_id = ?", at, at, id, userID)
		d.DeletedAt = &at
		return err
	})
	return d, err
}

// DatasetClaimValidation takes the next validating dataset whose lease is
// free or expired (after a crash or restart) and leases it.
func (s *Store) DatasetClaimValidation(ctx context.Context, now time.Time, lease time.Duration) (store.Dataset, bool, error) {
	var d store.Dataset
	found := false
	err := s.writeTx(ctx, func(x q) error {
		lock := ""
		if s.d.Name == "postgres" {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var err error
		d, err = scanDataset(x.queryRow(ctx, "SELECT "+datasetCols+` FROM datasets
			WHERE status = 'validating' AND deleted_at IS NULL AND (validation_lease_until IS NULL OR validation_lease_until < ?)
			ORDER BY updated_at LIMIT 1`+lock, now))
		if errors.Is(err, errNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		d.ValidationAttempts++
		_, err = x.exec(ctx, "UPDATE datasets SET validation_lease_until = ?, validation_attempts = ? WHERE id = ?", now.Add(lease), d.ValidationAttempts, d.ID)
		return err
	})
	return d, found, err
}

// DatasetExtendValidation renews the worker's lease.
func (s *Store) DatasetExtendValidation(ctx context.Context, id string, until time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "UPDATE datasets SET validation_lease_until = ? WHERE id = ? AND status = 'validating'", until, id)
		return err
	})
}

// DatasetSaveValidation stores the result, unless the dataset was deleted
// or is no longer validating. It reports whether it saved.
func (s *Store) DatasetSaveValidation(ctx context.Context, id string, v store.DatasetValidation) (bool, error) {
	saved := false
	err := s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, `UPDATE datasets SET status = ?, format = ?, training_ready = ?, total_training_pairs = ?, total_validation_pairs = ?,
			total_tokens = ?, avg_turns_per_conversation = ?, avg_tokens_per_turn = ?, validation_errors = ?, validation_warnings = ?,
			error_count = ?, warning_count = ?, statistics = ?, sample_data = ?, token_profile = ?, validated_at = ?, validation_lease_until = NULL, updated_at = ?
			WHERE id = ? AND status = 'validating' AND deleted_at IS NULL`,
			v.Status, v.Format, v.TrainingReady, v.TotalTrainingPairs, v.TotalValidationPairs, v.TotalTokens, v.AvgTurns, v.AvgTokensPerTurn,
			docArg(v.Errors), docArg(v.Warnings), v.ErrorCount, v.WarningCount, docArg(v.Statistics), docArg(v.Sample), docArg(v.TokenProfile), v.At, v.At, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		saved = n == 1
		if err != nil || !saved || v.Notification == nil {
			return err
		}
		var userID string
		if err := x.queryRow(ctx, "SELECT user_id FROM datasets WHERE id = ?", id).Scan(&userID); err != nil {
			return err
		}
		np := *v.Notification
		np.UserID = userID
		return s.notifyTx(ctx, x, np, v.At)
	})
	return saved, err
}

// DatasetPendingObjectDeletes lists deleted datasets whose object remains.
func (s *Store) DatasetPendingObjectDeletes(ctx context.Context, limit int) ([]store.Dataset, error) {
	var out []store.Dataset
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+datasetCols+" FROM datasets WHERE deleted_at IS NOT NULL AND storage_deleted_at IS NULL ORDER BY deleted_at LIMIT ?", limit)
		out, err = collect(rows, err, scanDataset)
		return err
	})
	return out, err
}

// DatasetMarkObjectDeleted records that the object is gone.
func (s *Store) DatasetMarkObjectDeleted(ctx context.Context, id string, at time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "UPDATE datasets SET storage_deleted_at = ? WHERE id = ?", at, id)
		return err
	})
}

// DatasetTokenProfile reads the token profile of one of the user's datasets.
func (s *Store) DatasetTokenProfile(ctx context.Context, userID, id string) (*validate.TokenProfile, error) {
	if !validID(id) {
		return nil, apperr.NotFound("dataset")
	}
	var p *validate.TokenProfile
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT token_profile FROM datasets WHERE id = ? AND user_id = ? AND deleted_at IS NULL", id, userID).Scan(optDoc[validate.TokenProfile]{&p})
	})
	if errors.Is(err, errNoRows) {
		return nil, apperr.NotFound("dataset")
	}
	return p, err
}
