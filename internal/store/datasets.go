package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/datasets/validate"
)

// Dataset statuses (spec).
const (
	DatasetUploading  = "uploading"
	DatasetValidating = "validating"
	DatasetReady      = "ready"
	DatasetError      = "error"
)

// Dataset is a row of the spec's datasets table plus validation details.
type Dataset struct {
	ID                      string             `json:"id"`
	UserID                  string             `json:"user_id"`
	Name                    string             `json:"name"`
	Description             *string            `json:"description"`
	Format                  string             `json:"format"`
	Status                  string             `json:"status"`
	StorageBucket           string             `json:"storage_bucket"`
	StoragePath             string             `json:"storage_path"`
	FileName                string             `json:"file_name"`
	FileSize                int64              `json:"file_size"`
	TotalTrainingPairs      *int               `json:"total_training_pairs"`
	TotalValidationPairs    *int               `json:"total_validation_pairs"`
	TotalTokens             *int64             `json:"total_tokens"`
	AvgTurnsPerConversation *float64           `json:"avg_turns_per_conversation"`
	AvgTokensPerTurn        *float64           `json:"avg_tokens_per_turn"`
	TrainingReady           bool               `json:"training_ready"`
	ValidatedAt             *time.Time         `json:"validated_at"`
	ValidationErrors        []validate.Issue   `json:"validation_errors"`
	SampleData              []validate.Example `json:"sample_data"`
	CreatedAt               time.Time          `json:"created_at"`
	UpdatedAt               time.Time          `json:"updated_at"`
	DeletedAt               *time.Time         `json:"deleted_at"`

	Statistics         *validate.Stats  `json:"statistics"` // nil until validated
	ValidationWarnings []validate.Issue `json:"validation_warnings"`
	ErrorCount         int              `json:"error_count"`
	WarningCount       int              `json:"warning_count"`
	ValidationAttempts int              `json:"validation_attempts"`
}

// DatasetCreateParams creates a dataset row in status uploading.
type DatasetCreateParams struct {
	ID, UserID, Name string
	At               time.Time // the caller's clock
	Description      *string
	Format           string
	StoragePath      string
	FileName         string
	FileSize         int64
}

// DatasetListParams filter and page a user's datasets.
type DatasetListParams struct {
	UserID string
	Status string
	Search string
	Page   int
	Limit  int
}

// DatasetPatch changes user-editable fields (nil = unchanged).
type DatasetPatch struct {
	Name        *string
	Description *string
	At          time.Time // the caller's clock
}

// DatasetValidation is the outcome the validation worker saves.
type DatasetValidation struct {
	Status               string // ready or error
	Format               string
	TrainingReady        bool
	TotalTrainingPairs   int
	TotalValidationPairs int
	TotalTokens          int64
	AvgTurns             float64
	AvgTokensPerTurn     float64
	Errors, Warnings     []validate.Issue
	ErrorCount           int
	WarningCount         int
	Statistics           validate.Stats
	Sample               []validate.Example
	// TokenProfile is the per-example token estimate.
	TokenProfile validate.TokenProfile
	At           time.Time
	// Notification is created in the same transaction (user id filled in).
	Notification *NotificationCreateParams
}

// DatasetStore persists datasets. User methods take the owner's id and
// never see other users' rows or soft-deleted ones.
type DatasetStore interface {
	DatasetCreate(ctx context.Context, p DatasetCreateParams) (Dataset, error)
	DatasetGet(ctx context.Context, userID, id string) (Dataset, error)
	DatasetList(ctx context.Context, p DatasetListParams) ([]Dataset, int, error)
	DatasetUpdate(ctx context.Context, userID, id string, p DatasetPatch) (Dataset, error)
	// DatasetStartValidation moves uploading → validating (validating stays).
	DatasetStartValidation(ctx context.Context, userID, id string, at time.Time) (Dataset, error)
	// DatasetSoftDelete marks the row deleted unless a queued or running
	// job uses it (apperr conflict).
	DatasetSoftDelete(ctx context.Context, userID, id string, at time.Time) (Dataset, error)
	// DatasetTokenProfile is the token profile saved by validation (nil
	// when the dataset was validated before profiles existed).
	DatasetTokenProfile(ctx context.Context, userID, id string) (*validate.TokenProfile, error)

	// System (worker) methods.
	DatasetClaimValidation(ctx context.Context, now time.Time, lease time.Duration) (Dataset, bool, error)
	DatasetExtendValidation(ctx context.Context, id string, until time.Time) error
	DatasetSaveValidation(ctx context.Context, id string, v DatasetValidation) (bool, error)
	DatasetPendingObjectDeletes(ctx context.Context, limit int) ([]Dataset, error)
	DatasetMarkObjectDeleted(ctx context.Context, id string, at time.Time) error
}
