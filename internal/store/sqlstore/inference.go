package sqlstore

import (
	"context"
	"strings"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

const inferenceCols = `id, user_id, base_model, model_id, source, status, finish_reason, error, prompt_tokens, completion_tokens,
	gpu_type, queue_seconds, first_token_seconds, total_seconds, created_at, finished_at`

// InferenceRecord inserts a finished request and its cost record.
func (s *Store) InferenceRecord(ctx context.Context, p store.InferenceRecordParams) error {
	r := p.Request
	var modelID any
	if r.ModelID != nil {
		modelID = *r.ModelID
	}
	return s.writeTx(ctx, func(x q) error {
		if _, err := x.exec(ctx, `INSERT INTO inference_requests (`+inferenceCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.UserID, r.BaseModel, modelID, r.Source, r.Status, r.FinishReason, r.Error, r.PromptTokens, r.CompletionTokens,
			r.GPUType, r.QueueSeconds, r.FirstTokenSeconds, r.TotalSeconds, r.CreatedAt.UTC(), r.FinishedAt.UTC()); err != nil {
			return err
		}
		_, err := x.exec(ctx, `INSERT INTO cost_records (id, user_id, cost_type, amount, details, billing_period, recorded_at)
			VALUES (?, ?, 'inference', ?, ?, ?, ?)`, uuid.NewString(), r.UserID, p.Cost.Amount, costDetailsArg(costdoc.Details{Inference: p.Cost.Details}), p.Cost.BillingPeriod, r.FinishedAt.UTC())
		return err
	})
}

// InferenceList returns the user's requests, newest first.
func (s *Store) InferenceList(ctx context.Context, userID string, limit int) ([]store.InferenceRequest, error) {
	var out []store.InferenceRequest
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+strings.ReplaceAll(inferenceCols, "\n\t", " ")+" FROM inference_requests WHERE user_id = ? ORDER BY created_at DESC, id LIMIT ?", userID, limit)
		out, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (store.InferenceRequest, error) {
			var r store.InferenceRequest
			err := sc.Scan(&r.ID, &r.UserID, &r.BaseModel, &r.ModelID, &r.Source, &r.Status, &r.FinishReason, &r.Error, &r.PromptTokens, &r.CompletionTokens,
				&r.GPUType, &r.QueueSeconds, &r.FirstTokenSeconds, &r.TotalSeconds, ts{&r.CreatedAt}, ts{&r.FinishedAt})
			return r, err
		})
		return err
	})
	return out, err
}

// PreferenceCreate inserts a preference.
func (s *Store) PreferenceCreate(ctx context.Context, p store.Preference) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO preferences (id, user_id, model_id, messages, left_side, left_text, right_text, choice, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, p.UserID, p.ModelID, docArg(p.Messages), p.LeftSide, p.LeftText, p.RightText, p.Choice, p.CreatedAt.UTC())
		return err
	})
}

// PreferenceList returns the user's preferences for a model, oldest first.
func (s *Store) PreferenceList(ctx context.Context, userID, modelID string) ([]store.Preference, error) {
	var out []store.Preference
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, `SELECT id, user_id, model_id, messages, left_side, left_text, right_text, choice, created_at
			FROM preferences WHERE user_id = ? AND model_id = ? ORDER BY created_at, id`, userID, modelID)
		out, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (store.Preference, error) {
			var p store.Preference
			err := sc.Scan(&p.ID, &p.UserID, &p.ModelID, doc[[]jobdoc.Message]{&p.Messages}, &p.LeftSide, &p.LeftText, &p.RightText, &p.Choice, ts{&p.CreatedAt})
			return p, err
		})
		return err
	})
	return out, err
}
