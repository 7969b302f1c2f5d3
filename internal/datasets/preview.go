package datasets

import (
	"context"
	"errors"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
)

// ExamplePage is one page of a dataset's trainable examples, as chat
// messages, optionally filtered by a search text.
type ExamplePage struct {
	Examples []validate.Example `json:"examples"`
	Page     int                `json:"page"`
	Limit    int                `json:"limit"`
	HasMore  bool               `json:"has_more"`
	Query    string             `json:"q"`
}

// errPageFull stops the read once a page (and one more match) is found.
var errPageFull = errors.New("page full")

// Examples reads the dataset's file (streamed from storage, as validation
// does) and returns the page-th page of the trainable examples whose
// messages contain q (case-insensitive). Reading stops one match past the
// page, so early pages of a large file are quick.
func (s *Service) Examples(ctx context.Context, userID, id, q string, page, limit int) (ExamplePage, error) {
	d, err := s.Store.DatasetGet(ctx, userID, id)
	if err != nil {
		return ExamplePage{}, err
	}
	if d.Status != store.DatasetReady && d.Status != store.DatasetError {
		return ExamplePage{}, apperr.Conflict("the dataset is %s: its examples can be browsed once validation has finished", d.Status)
	}
	out := ExamplePage{Examples: []validate.Example{}, Page: page, Limit: limit, Query: q}
	val := map[string]bool{}
	if st := d.Statistics; st != nil {
		for _, k := range st.ValidationConversationKeys {
			val[k] = true
		}
	}
	rc, err := s.Storage.Open(ctx, storage.BucketDatasets, d.StoragePath)
	if err != nil {
		return out, err
	}
	defer rc.Close()
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	needle := strings.ToLower(strings.TrimSpace(q))
	skip := (page - 1) * limit
	_, err = validate.Validate(rctx, rc, validate.Options{Format: d.Format, Visit: func(ex validate.Example) {
		if needle != "" && !matches(ex, needle) {
			return
		}
		if skip > 0 {
			skip--
			return
		}
		if len(out.Examples) == limit {
			out.HasMore = true
			cancel(errPageFull)
			return
		}
		ex.Split = validate.SplitTraining
		if val[ex.ConversationKey] {
			ex.Split = validate.SplitValidation
		}
		out.Examples = append(out.Examples, ex)
	}})
	if err != nil && !errors.Is(context.Cause(rctx), errPageFull) {
		return out, err
	}
	return out, nil
}

func matches(ex validate.Example, needle string) bool {
	for _, m := range ex.Messages {
		if strings.Contains(strings.ToLower(m.Content), needle) {
			return true
		}
	}
	return false
}
