package datasets

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/store"
)

// The rules of the user's dataset library: listing, reading, renaming and
// the error report (uploads and validation are in service.go and worker.go).

// ListResult is the spec's list shape.
type ListResult struct {
	Datasets   []store.Dataset `json:"datasets"`
	Total      int             `json:"total"`
	Page       int             `json:"page"`
	Limit      int             `json:"limit"`
	TotalPages int             `json:"totalPages"`
	Status     string          `json:"status,omitempty"`
	Search     string          `json:"search,omitempty"`
}

var statuses = []string{store.DatasetUploading, store.DatasetValidating, store.DatasetReady, store.DatasetError}

// List pages the user's datasets: status is one of the dataset statuses or
// empty, search at most 200 characters.
func (s *Service) List(ctx context.Context, p store.DatasetListParams) (ListResult, error) {
	p.Search = strings.TrimSpace(p.Search)
	f := apperr.FieldErrors{}
	if p.Status != "" && !contains(statuses, p.Status) {
		f.Add("status", "use one of "+strings.Join(statuses, ", "))
	}
	if utf8.RuneCountInString(p.Search) > 200 {
		f.Add("search", "use at most 200 characters")
	}
	if err := f.Err(); err != nil {
		return ListResult{}, err
	}
	list, total, err := s.Store.DatasetList(ctx, p)
	if err != nil {
		return ListResult{}, err
	}
	if list == nil {
		list = []store.Dataset{}
	}
	return ListResult{Datasets: list, Total: total, Page: p.Page, Limit: p.Limit, TotalPages: httpx.TotalPages(total, p.Limit),
		Status: p.Status, Search: p.Search}, nil
}

// Get loads one of the user's datasets.
func (s *Service) Get(ctx context.Context, userID, id string) (store.Dataset, error) {
	return s.Store.DatasetGet(ctx, userID, id)
}

// Patch renames or describes a dataset.
type Patch struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// Update validates the patch and applies it.
func (s *Service) Update(ctx context.Context, userID, id string, p Patch) (store.Dataset, error) {
	f := apperr.FieldErrors{}
	f.Name("name", p.Name)
	f.MaxRunes("description", p.Description, 5000)
	if p.Name == nil && p.Description == nil {
		f.Add("name", "send name and/or description to change")
	}
	if err := f.Err(); err != nil {
		return store.Dataset{}, err
	}
	return s.Store.DatasetUpdate(ctx, userID, id, store.DatasetPatch{Name: p.Name, Description: p.Description, At: s.Now().UTC()})
}

// ErrorReport is a dataset with its kept validation errors (the first 100).
func (s *Service) ErrorReport(ctx context.Context, userID, id string) (store.Dataset, []validate.Issue, error) {
	d, err := s.Store.DatasetGet(ctx, userID, id)
	if err != nil {
		return d, nil, err
	}
	return d, d.ValidationErrors, nil
}
