package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
)

// InferenceRequest is an inference_requests row: one chat request an agent
// served (or that ended before one did), with its usage.
type InferenceRequest struct {
	ID                string    `json:"id"`
	UserID            string    `json:"user_id"`
	BaseModel         string    `json:"base_model"`
	ModelID           *string   `json:"model_id"`
	Source            string    `json:"source"` // v1 | playground
	Status            string    `json:"status"` // completed | cancelled | failed | timeout
	FinishReason      *string   `json:"finish_reason"`
	Error             *string   `json:"error"`
	PromptTokens      int       `json:"prompt_tokens"`
	CompletionTokens  int       `json:"completion_tokens"`
	GPUType           *string   `json:"gpu_type"`
	QueueSeconds      *float64  `json:"queue_seconds"`
	FirstTokenSeconds *float64  `json:"first_token_seconds"`
	TotalSeconds      *float64  `json:"total_seconds"`
	CreatedAt         time.Time `json:"created_at"`
	FinishedAt        time.Time `json:"finished_at"`
}

// InferenceCost is the cost record written beside a finished request.
type InferenceCost struct {
	Amount        float64
	Details       *costdoc.Inference
	BillingPeriod string // YYYY-MM-DD
}

// InferenceRecordParams store a finished request and its cost record in
// one transaction.
type InferenceRecordParams struct {
	Request InferenceRequest
	Cost    InferenceCost
}

// InferenceStore persists inference usage.
type InferenceStore interface {
	// InferenceRecord inserts the request row and its 'inference' cost
	// record (recorded at Request.FinishedAt).
	InferenceRecord(ctx context.Context, p InferenceRecordParams) error
	// InferenceList returns the user's requests, newest first.
	InferenceList(ctx context.Context, userID string, limit int) ([]InferenceRequest, error)
}

// Preference is a preferences row: which of two answers to the same
// conversation the user found better in the playground.
type Preference struct {
	ID        string           `json:"id"`
	UserID    string           `json:"user_id"`
	ModelID   string           `json:"model_id"`
	Messages  []jobdoc.Message `json:"messages"`  // the conversation both answered
	LeftSide  string           `json:"left_side"` // base | adapter
	LeftText  string           `json:"left_text"`
	RightText string           `json:"right_text"`
	Choice    string           `json:"choice"` // left | right | tie
	CreatedAt time.Time        `json:"created_at"`
}

// PreferenceStore persists playground preferences.
type PreferenceStore interface {
	PreferenceCreate(ctx context.Context, p Preference) error
	// PreferenceList returns the user's preferences for a model, oldest first.
	PreferenceList(ctx context.Context, userID, modelID string) ([]Preference, error)
}
