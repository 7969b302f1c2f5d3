package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
)

// StorageUsage is how many bytes a user keeps in storage.
type StorageUsage struct {
	UserID        string
	DatasetBytes  int64
	ArtifactBytes int64
}

// CostStore persists cost records, storage accruals and budget alerts.
type CostStore interface {
	// CostList returns the user's records with recorded_at in [from, to).
	CostList(ctx context.Context, userID string, from, to time.Time) ([]CostRecord, error)
	// StorageUsageDuring lists every user's bytes in objects that existed at
	// some point in [from, to): created before to and not deleted before
	// from (system).
	StorageUsageDuring(ctx context.Context, from, to time.Time) ([]StorageUsage, error)
	// CostStorageAccrue records one day's storage cost; false when that day
	// was already recorded for the user (idempotent).
	CostStorageAccrue(ctx context.Context, userID string, day time.Time, amount float64, details costdoc.Storage) (bool, error)
	// BudgetUsers lists users with a monthly budget (system).
	BudgetUsers(ctx context.Context) ([]UserSettings, error)
	// BudgetAlertRecord marks a threshold as notified for a month; false if it already was.
	BudgetAlertRecord(ctx context.Context, userID string, month time.Time, threshold int, at time.Time) (bool, error)
}
