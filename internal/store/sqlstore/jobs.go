package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

const jobCols = `j.id, j.user_id, j.dataset_id, j.preset_id, j.hyperparameters, j.gpu_config, j.status, j.current_stage, j.progress,
	j.current_epoch, j.total_epochs, j.current_step, j.total_steps, j.current_metrics, j.queued_at, j.started_at, j.completed_at,
	j.estimated_completion_at, j.current_cost, j.estimated_total_cost, j.final_cost, j.error_message, j.error_stack, j.retry_count,
	j.external_job_id, j.artifact_id, j.created_at, j.updated_at, j.base_model, j.gpu_type, j.num_gpus, j.estimate,
	j.measured_tokens_per_second, j.cancel_requested_at, d.name, j.name`

const jobFrom = " FROM training_jobs j JOIN datasets d ON d.id = j.dataset_id "

func scanJob(sc interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var status, stage, base, gpu, dname, name string
	var progress, cost *float64
	var epoch, step, retry, ngpu *int
	var errMsg, errStack, ext, art string
	err := sc.Scan(&j.ID, &j.UserID, &j.DatasetID, &j.PresetID, doc[catalog.Hyperparameters]{&j.Hyperparameters}, doc[jobdoc.GPUConfig]{&j.GPUConfig}, nstr{&status}, nstr{&stage}, &progress,
		&epoch, &j.TotalEpochs, &step, &j.TotalSteps, optDoc[jobdoc.Metrics]{&j.CurrentMetrics}, ts{&j.QueuedAt}, nts{&j.StartedAt}, nts{&j.CompletedAt},
		nts{&j.EstimatedCompletionAt}, &cost, &j.EstimatedTotalCost, &j.FinalCost, nstr{&errMsg}, nstr{&errStack}, &retry,
		nstr{&ext}, nstr{&art}, ts{&j.CreatedAt}, ts{&j.UpdatedAt}, nstr{&base}, nstr{&gpu}, &ngpu, optDoc[estimate.Result]{&j.Estimate},
		&j.MeasuredTokensPerSecond, nts{&j.CancelRequestedAt}, nstr{&dname}, nstr{&name})
	j.Name = name
	j.Status, j.CurrentStage, j.BaseModel, j.GPUType, j.DatasetName = status, stage, base, gpu, dname
	j.Progress, j.CurrentCost = deref(progress), deref(cost)
	j.CurrentEpoch, j.CurrentStep, j.RetryCount, j.NumGPUs = derefInt(epoch), derefInt(step), derefInt(retry), derefInt(ngpu)
	j.ErrorMessage, j.ErrorStack, j.ExternalJobID, j.ArtifactID = strPtr(errMsg), strPtr(errStack), strPtr(ext), strPtr(art)
	return j, err
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func derefInt(i *int) int {
	if i == nil {
		return 0
	}
	return *i
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// JobCreate inserts a queued job.
func (s *Store) JobCreate(ctx context.Context, p store.JobCreateParams) (store.Job, error) {
	now, err := stamp(p.At, "JobCreateParams")
	if err != nil {
		return store.Job{}, err
	}
	err = s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO training_jobs (id, user_id, dataset_id, preset_id, hyperparameters, gpu_config, status, current_stage,
			progress, current_epoch, total_epochs, current_step, total_steps, queued_at, estimated_completion_at, current_cost, estimated_total_cost,
			retry_count, created_at, updated_at, base_model, gpu_type, num_gpus, estimate, name)
			VALUES (?, ?, ?, ?, ?, ?, 'queued', 'queued', 0, 0, ?, 0, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.UserID, p.DatasetID, p.PresetID, docArg(p.Hyperparameters), docArg(p.GPUConfig), p.TotalEpochs, p.TotalSteps,
			now, p.EstimatedCompletionAt, p.EstimatedTotalCost, now, now, p.BaseModel, p.GPUType, p.NumGPUs, optDocArg(p.Estimate), nullIfEmpty(p.Name))
		return err
	})
	if err != nil {
		return store.Job{}, err
	}
	return s.JobGet(ctx, p.UserID, p.ID)
}

func (s *Store) jobGet(ctx context.Context, x q, userID, id string) (store.Job, error) {
	if !validID(id) {
		return store.Job{}, apperr.NotFound("training job")
	}
	j, err := scanJob(x.queryRow(ctx, "SELECT "+jobCols+jobFrom+"WHERE j.id = ? AND j.user_id = ?", id, userID))
	if errors.Is(err, errNoRows) {
		return j, apperr.NotFound("training job")
	}
	return j, err
}

// JobGet loads one of the user's jobs.
func (s *Store) JobGet(ctx context.Context, userID, id string) (store.Job, error) {
	return readOne(s, ctx, func(x q) (store.Job, error) { return s.jobGet(ctx, x, userID, id) })
}

// JobList pages through the user's jobs, newest first.
func (s *Store) JobList(ctx context.Context, p store.JobListParams) ([]store.Job, int, error) {
	where := "WHERE j.user_id = ?"
	args := []any{p.UserID}
	if p.Status != "" {
		where += " AND j.status = ?"
		args = append(args, p.Status)
	}
	var out []store.Job
	var total int
	err := s.readTx(ctx, func(x q) error {
		if err := x.queryRow(ctx, "SELECT count(*) FROM training_jobs j "+where, args...).Scan(&total); err != nil {
			return err
		}
		rows, err := x.query(ctx, "SELECT "+jobCols+jobFrom+where+" ORDER BY j.created_at DESC, j.id LIMIT ? OFFSET ?", append(args, p.Limit, (p.Page-1)*p.Limit)...)
		out, err = collect(rows, err, scanJob)
		return err
	})
	return out, total, err
}

// JobCancel cancels a queued job now, or asks the agent to stop a running one.
func (s *Store) JobCancel(ctx context.Context, p store.JobCancelParams) (store.Job, error) {
	var j store.Job
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if j, err = s.jobGet(ctx, x, p.UserID, p.ID); err != nil {
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
		switch {
		case eff.Status != j.Status:
			_, err = x.exec(ctx, `UPDATE training_jobs SET status = ?, current_stage = ?, cancel_requested_at = ?, completed_at = ?,
				final_cost = ?, updated_at = ? WHERE id = ? AND user_id = ? AND status = ?`, eff.Status, eff.Stage, p.At, p.At, eff.Cost, p.At, p.ID, p.UserID, j.Status)
		case j.CancelRequestedAt == nil:
			_, err = x.exec(ctx, "UPDATE training_jobs SET cancel_requested_at = ?, updated_at = ? WHERE id = ? AND user_id = ?", p.At, p.At, p.ID, p.UserID)
		}
		if err != nil {
			return err
		}
		var attempt int
		if err := x.queryRow(ctx, "SELECT attempt FROM training_jobs WHERE id = ?", p.ID).Scan(&attempt); err != nil {
			return err
		}
		if err := s.effectsTx(ctx, x, p.ID, attempt, eff, p.At); err != nil {
			return err
		}
		j, err = s.jobGet(ctx, x, p.UserID, p.ID)
		return err
	})
	return j, err
}

// JobSummary counts the user's jobs by outcome and sums this month's costs.
func (s *Store) JobSummary(ctx context.Context, userID string, monthStart time.Time) (store.JobSummary, error) {
	var sum store.JobSummary
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT status, count(*) FROM training_jobs WHERE user_id = ? GROUP BY status", userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				return err
			}
			switch st {
			case store.JobQueued, store.JobInitializing, store.JobRunning, store.JobPaused:
				sum.Active += n
			case store.JobCompleted:
				sum.Completed += n
			case store.JobFailed:
				sum.Failed += n
			case store.JobCancelled:
				sum.Cancelled += n
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		sum.SpentThisMonth, err = s.costSpent(ctx, x, userID, monthStart)
		return err
	})
	return sum, err
}

func (s *Store) costSpent(ctx context.Context, x q, userID string, from time.Time) (float64, error) {
	var v *float64
	err := x.queryRow(ctx, "SELECT sum(amount) FROM cost_records WHERE user_id = ? AND recorded_at >= ?", userID, from).Scan(&v)
	return deref(v), err
}

// CostSpent sums the user's cost records since from.
func (s *Store) CostSpent(ctx context.Context, userID string, from time.Time) (float64, error) {
	return readOne(s, ctx, func(x q) (float64, error) { return s.costSpent(ctx, x, userID, from) })
}

// JobCommitted sums the estimates of the user's active jobs minus what they
// have already accrued (that part is in current_cost, not yet a record).
func (s *Store) JobCommitted(ctx context.Context, userID string) (float64, error) {
	var v *float64
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT sum(estimated_total_cost) FROM training_jobs WHERE user_id = ? AND status IN ("+placeholders(len(store.JobActive))+")",
			append([]any{userID}, anySlice(store.JobActive)...)...).Scan(&v)
	})
	return deref(v), err
}

// JobCalibration averages measured throughput of completed jobs.
func (s *Store) JobCalibration(ctx context.Context, gpuType, baseModel string) (store.Calibration, error) {
	var c store.Calibration
	var avg, overhead *float64
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, `SELECT count(*), avg(measured_tokens_per_second / CASE WHEN num_gpus > 0 THEN num_gpus ELSE 1 END), avg(measured_overhead_seconds)
			FROM training_jobs WHERE status = 'completed' AND gpu_type = ? AND base_model = ? AND measured_tokens_per_second > 0`, gpuType, baseModel).Scan(&c.Runs, &avg, &overhead)
	})
	c.TokensPerSecond, c.OverheadSeconds = deref(avg), deref(overhead)
	return c, err
}

// UserSettingsGet returns the user's settings (defaults when none saved).
func (s *Store) UserSettingsGet(ctx context.Context, userID string) (store.UserSettings, error) {
	st := store.UserSettings{UserID: userID, BudgetHardStop: true}
	err := s.readTx(ctx, func(x q) error {
		var hard *bool
		err := x.queryRow(ctx, "SELECT monthly_budget, budget_hard_stop FROM user_settings WHERE user_id = ?", userID).Scan(&st.MonthlyBudget, &hard)
		if errors.Is(err, errNoRows) {
			return nil
		}
		st.BudgetHardStop = hard == nil || *hard
		return err
	})
	return st, err
}

// UserSettingsPut saves the user's settings.
func (s *Store) UserSettingsPut(ctx context.Context, st store.UserSettings) error {
	now, err := stamp(st.At, "UserSettings.At")
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO user_settings (user_id, monthly_budget, budget_hard_stop, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET monthly_budget = excluded.monthly_budget, budget_hard_stop = excluded.budget_hard_stop, updated_at = excluded.updated_at`,
			st.UserID, st.MonthlyBudget, st.BudgetHardStop, now, now)
		return err
	})
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
