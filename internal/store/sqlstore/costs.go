package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

func scanCost(sc interface{ Scan(...any) error }) (store.CostRecord, error) {
	var c store.CostRecord
	var job string
	var period time.Time
	var details json.RawMessage
	if err := sc.Scan(&c.ID, &c.UserID, nstr{&job}, &c.CostType, &c.Amount, njson{&details}, ts{&period}, ts{&c.RecordedAt}); err != nil {
		return c, err
	}
	c.JobID = strPtr(job)
	c.BillingPeriod = period.Format("2006-01-02")
	var err error
	c.Details, err = costDetails(c.CostType, details)
	return c, err
}

const costCols = "id, user_id, job_id, cost_type, amount, details, billing_period, recorded_at"

// CostList returns the user's cost records in [from, to), oldest first.
func (s *Store) CostList(ctx context.Context, userID string, from, to time.Time) ([]store.CostRecord, error) {
	var out []store.CostRecord
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+costCols+" FROM cost_records WHERE user_id = ? AND recorded_at >= ? AND recorded_at < ? ORDER BY recorded_at, id", userID, from, to)
		out, err = collect(rows, err, scanCost)
		return err
	})
	return out, err
}

// StorageUsageDuring sums each user's dataset and model file sizes of the
// objects that existed at some point in [from, to).
func (s *Store) StorageUsageDuring(ctx context.Context, from, to time.Time) ([]store.StorageUsage, error) {
	usage := map[string]*store.StorageUsage{}
	get := func(id string) *store.StorageUsage {
		if usage[id] == nil {
			usage[id] = &store.StorageUsage{UserID: id}
		}
		return usage[id]
	}
	err := s.readTx(ctx, func(x q) error {
		if err := sumBytesByUser(ctx, x, func(id string, n int64) { get(id).DatasetBytes = n }, `SELECT user_id, sum(file_size) FROM datasets
			WHERE status <> 'uploading' AND created_at < ? AND (deleted_at IS NULL OR deleted_at >= ?) GROUP BY user_id`, to, from); err != nil {
			return err
		}
		// Exports (merged models, GGUF files) are model files too.
		if err := sumBytesByUser(ctx, x, func(id string, n int64) { get(id).ArtifactBytes += n }, `SELECT user_id, sum(size_bytes) FROM model_exports
			WHERE ready_at IS NOT NULL AND ready_at < ? AND (deleted_at IS NULL OR deleted_at >= ?) GROUP BY user_id`, to, from); err != nil {
			return err
		}
		rows, err := x.query(ctx, "SELECT user_id, artifacts FROM model_artifacts WHERE created_at < ? AND (deleted_at IS NULL OR deleted_at >= ?)", to, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var a jobdoc.Artifacts
			if err := rows.Scan(&id, doc[jobdoc.Artifacts]{&a}); err != nil {
				return err
			}
			for _, f := range a.Files {
				get(id).ArtifactBytes += f.Size
			}
		}
		return rows.Err()
	})
	out := make([]store.StorageUsage, 0, len(usage))
	for _, u := range usage {
		out = append(out, *u)
	}
	return out, err
}

// CostStorageAccrue inserts the day's storage record once.
func (s *Store) CostStorageAccrue(ctx context.Context, userID string, day time.Time, amount float64, details costdoc.Storage) (bool, error) {
	inserted := false
	err := s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, `INSERT INTO cost_records (id, user_id, cost_type, amount, details, billing_period, recorded_at)
			VALUES (?, ?, 'storage', ?, ?, ?, ?) ON CONFLICT (user_id, billing_period) WHERE cost_type = 'storage' DO NOTHING`,
			uuid.NewString(), userID, amount, costDetailsArg(costdoc.Details{Storage: &details}), day.UTC().Format("2006-01-02"), day.UTC())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted = n == 1
		return err
	})
	return inserted, err
}

// BudgetUsers lists users who set a monthly budget.
func (s *Store) BudgetUsers(ctx context.Context) ([]store.UserSettings, error) {
	var out []store.UserSettings
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT user_id, monthly_budget, budget_hard_stop FROM user_settings WHERE monthly_budget IS NOT NULL")
		out, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (store.UserSettings, error) {
			var u store.UserSettings
			var hard *bool
			err := sc.Scan(&u.UserID, &u.MonthlyBudget, &hard)
			u.BudgetHardStop = hard == nil || *hard
			return u, err
		})
		return err
	})
	return out, err
}

// BudgetAlertRecord records a threshold alert once per month.
func (s *Store) BudgetAlertRecord(ctx context.Context, userID string, month time.Time, threshold int, at time.Time) (bool, error) {
	inserted := false
	err := s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "INSERT INTO budget_alerts (user_id, month, threshold, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			userID, month.UTC().Format("2006-01-02"), threshold, at.UTC())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted = n == 1
		return err
	})
	return inserted, err
}

// sumBytesByUser runs a "user_id, sum(bytes) ... GROUP BY user_id" query and
// hands each user's non-null sum to add.
func sumBytesByUser(ctx context.Context, x q, add func(userID string, n int64), query string, args ...any) error {
	rows, err := x.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n *int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		if n != nil {
			add(id, *n)
		}
	}
	return rows.Err()
}
