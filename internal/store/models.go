package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
)

// Model is a model_artifacts row (spec) plus its job's and dataset's names.
type Model struct {
	ID              string               `json:"id"`
	UserID          string               `json:"user_id"`
	JobID           string               `json:"job_id"`
	DatasetID       string               `json:"dataset_id"`
	Name            string               `json:"name"`
	Version         string               `json:"version"`
	Description     *string              `json:"description"`
	Status          string               `json:"status"`
	QualityMetrics  jobdoc.Quality       `json:"quality_metrics"`
	TrainingSummary jobdoc.Summary       `json:"training_summary"`
	Configuration   jobdoc.Configuration `json:"configuration"`
	Artifacts       jobdoc.Artifacts     `json:"artifacts"`
	ParentModelID   *string              `json:"parent_model_id"`
	CreatedAt       time.Time            `json:"created_at"`
	UpdatedAt       time.Time            `json:"updated_at"`
	DatasetName     string               `json:"dataset_name"`
	BaseModel       string               `json:"base_model"`
}

// ModelListParams page a user's models.
type ModelListParams struct {
	UserID string
	Sort   string // newest | quality
	Page   int
	Limit  int
}

// ModelSortKey is the quality metric ModelList sorts by with Sort
// "quality", highest first (the models domain rates models by it).
const ModelSortKey = "perplexity_improvement_pct"

// ModelPatch changes name, description or status (stored | archived).
type ModelPatch struct {
	Name, Description, Status *string
	At                        time.Time // the caller's clock
}

// ModelStore persists model artifacts.
type ModelStore interface {
	ModelList(ctx context.Context, p ModelListParams) ([]Model, int, error)
	ModelGet(ctx context.Context, userID, id string) (Model, error)
	ModelUpdate(ctx context.Context, userID, id string, p ModelPatch) (Model, error)
	ModelSoftDelete(ctx context.Context, userID, id string, at time.Time) (Model, error)
}
