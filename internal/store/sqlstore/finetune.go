package sqlstore

import (
	"context"
	"errors"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
)

const fineTuneCols = `id, user_id, job_id, model, training_file, validation_file, suffix, seed, metadata, request, status,
	error_code, error_message, error_param, created_at, updated_at, finished_at`

func scanFineTune(sc interface{ Scan(...any) error }) (store.FineTuneJob, error) {
	var f store.FineTuneJob
	var jobID, val, suffix, code, msg, param string
	err := sc.Scan(&f.ID, &f.UserID, nstr{&jobID}, &f.Model, &f.TrainingFile, nstr{&val}, nstr{&suffix}, &f.Seed, doc[map[string]string]{&f.Metadata}, doc[jobdoc.FineTunePlan]{&f.Request},
		&f.Status, nstr{&code}, nstr{&msg}, nstr{&param}, ts{&f.CreatedAt}, ts{&f.UpdatedAt}, nts{&f.FinishedAt})
	if err != nil {
		return f, err
	}
	f.JobID, f.ValidationFile, f.Suffix = strPtr(jobID), strPtr(val), strPtr(suffix)
	f.ErrorCode, f.ErrorMessage, f.ErrorParam = strPtr(code), strPtr(msg), strPtr(param)
	return f, nil
}

// metaArg passes a job's metadata (nil: NULL).
func metaArg(m map[string]string) any {
	if m == nil {
		return nil
	}
	return docArg(m)
}

// FineTuneCreate inserts a fine-tuning job row.
func (s *Store) FineTuneCreate(ctx context.Context, f store.FineTuneJob) (store.FineTuneJob, error) {
	at, err := stamp(f.CreatedAt, "FineTuneJob.CreatedAt")
	if err != nil {
		return f, err
	}
	f.CreatedAt, f.UpdatedAt = at, at
	meta := metaArg(f.Metadata)
	err = s.writeTx(ctx, func(x q) error {
		var jobID any
		if f.JobID != nil {
			jobID = *f.JobID
		}
		_, err := x.exec(ctx, `INSERT INTO openai_fine_tuning_jobs (`+fineTuneCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.UserID, jobID, f.Model, f.TrainingFile, f.ValidationFile, f.Suffix, f.Seed, meta, docArg(f.Request), f.Status,
			f.ErrorCode, f.ErrorMessage, f.ErrorParam, f.CreatedAt, f.UpdatedAt, f.FinishedAt)
		return err
	})
	return f, err
}

func (s *Store) fineTuneOne(ctx context.Context, where string, args ...any) (store.FineTuneJob, error) {
	f, err := readOne(s, ctx, func(x q) (store.FineTuneJob, error) {
		return scanFineTune(x.queryRow(ctx, "SELECT "+fineTuneCols+" FROM openai_fine_tuning_jobs WHERE "+where, args...))
	})
	if errors.Is(err, errNoRows) {
		return f, apperr.NotFound("fine-tuning job")
	}
	return f, err
}

// FineTuneGet loads one of the user's fine-tuning jobs.
func (s *Store) FineTuneGet(ctx context.Context, userID, id string) (store.FineTuneJob, error) {
	if !validID(id) {
		return store.FineTuneJob{}, apperr.NotFound("fine-tuning job")
	}
	return s.fineTuneOne(ctx, "id = ? AND user_id = ?", id, userID)
}

// FineTuneByJob finds the fine-tuning job of one of the user's training jobs.
func (s *Store) FineTuneByJob(ctx context.Context, userID, jobID string) (store.FineTuneJob, error) {
	if !validID(jobID) {
		return store.FineTuneJob{}, apperr.NotFound("fine-tuning job")
	}
	return s.fineTuneOne(ctx, "job_id = ? AND user_id = ?", jobID, userID)
}

// FineTuneList pages the user's fine-tuning jobs, newest first.
func (s *Store) FineTuneList(ctx context.Context, p store.FineTuneListParams) ([]store.FineTuneJob, error) {
	var out []store.FineTuneJob
	err := s.readTx(ctx, func(x q) error {
		where, args := "user_id = ?", []any{p.UserID}
		if p.After != "" {
			after, err := scanFineTune(x.queryRow(ctx, "SELECT "+fineTuneCols+" FROM openai_fine_tuning_jobs WHERE id = ? AND user_id = ?", p.After, p.UserID))
			if errors.Is(err, errNoRows) {
				return apperr.Validation("validation failed", map[string]string{"after": "no fine-tuning job of yours has this id: pass the id of the last job of the previous page"})
			}
			if err != nil {
				return err
			}
			where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
			args = append(args, after.CreatedAt, after.CreatedAt, after.ID)
		}
		rows, err := x.query(ctx, "SELECT "+fineTuneCols+" FROM openai_fine_tuning_jobs WHERE "+where+" ORDER BY created_at DESC, id DESC LIMIT ?", append(args, p.Limit)...)
		out, err = collect(rows, err, scanFineTune)
		return err
	})
	return out, err
}

// FineTuneResolve moves a validating_files row to created, failed or cancelled.
func (s *Store) FineTuneResolve(ctx context.Context, p store.FineTuneResolve) (bool, error) {
	at, err := stamp(p.At, "FineTuneResolve.At")
	if err != nil {
		return false, err
	}
	var finished any
	if p.Status != store.FineTuneCreated {
		finished = at
	}
	ok := false
	err = s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, `UPDATE openai_fine_tuning_jobs SET status = ?, job_id = ?, error_code = ?, error_message = ?, error_param = ?,
			finished_at = ?, updated_at = ? WHERE id = ? AND status = ?`, p.Status, p.JobID, nullIfEmpty(p.ErrorCode), nullIfEmpty(p.ErrorMessage),
			nullIfEmpty(p.Param), finished, at, p.ID, store.FineTuneValidatingFiles)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		ok = n == 1
		return nil
	})
	return ok, err
}

// FineTunePending lists rows still waiting for their files (system).
func (s *Store) FineTunePending(ctx context.Context, limit int) ([]store.FineTuneJob, error) {
	var out []store.FineTuneJob
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+fineTuneCols+" FROM openai_fine_tuning_jobs WHERE status = ? ORDER BY created_at LIMIT ?", store.FineTuneValidatingFiles, limit)
		out, err = collect(rows, err, scanFineTune)
		return err
	})
	return out, err
}
