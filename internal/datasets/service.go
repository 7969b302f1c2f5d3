// Package datasets is the dataset domain: direct uploads to signed URLs,
// confirmation, the streaming validation worker, and the API and pages.
package datasets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// Formats accepted in the optional "format" field (auto-detected when absent).
var Formats = []string{"brightrun_lora_v4", "brightrun_lora_v4_jsonl", "openai_chat_jsonl"}

// Service implements the dataset use cases.
type Service struct {
	Store   store.Store
	Storage storage.Storage
	Log     *slog.Logger
	Now     func() time.Time
	// wake nudges the validation worker after a confirm.
	wake chan struct{}
}

// NewService returns a Service.
func NewService(st store.Store, objects storage.Storage, log *slog.Logger, now func() time.Time) *Service {
	return &Service{Store: st, Storage: objects, Log: log, Now: now, wake: make(chan struct{}, 1)}
}

// CreateRequest is the body of POST /api/datasets.
type CreateRequest struct {
	Name        string  `json:"name"`
	Description *string `json:"description"`
	Format      string  `json:"format"`
	FileName    string  `json:"file_name"`
	FileSize    int64   `json:"file_size"`
}

// Upload is where the client sends the file.
type Upload struct {
	Dataset       store.Dataset     `json:"dataset"`
	UploadURL     string            `json:"uploadUrl"`
	UploadMethod  string            `json:"uploadMethod"`
	UploadHeaders map[string]string `json:"uploadHeaders"`
	StoragePath   string            `json:"storagePath"`
	ExpiresAt     time.Time         `json:"expiresAt"`
}

const uploadTTL = time.Hour

func validateCreate(r *CreateRequest) error {
	f := apperr.FieldErrors{}
	f.Name("name", &r.Name)
	f.MaxRunes("description", r.Description, 5000)
	if r.Format != "" && !contains(Formats, r.Format) {
		f.Add("format", "use one of "+strings.Join(Formats, ", ")+", or leave it out to detect the format")
	}
	if strings.TrimSpace(r.FileName) == "" || len(r.FileName) > 255 {
		f.Add("file_name", "give the file's name (1 to 255 bytes)")
	}
	switch {
	case r.FileSize <= 0:
		f.Add("file_size", "give the file's size in bytes (an empty file has nothing to train on)")
	case r.FileSize > storage.MaxDatasetSize:
		f.Add("file_size", fmt.Sprintf("the limit is %d bytes (500 MB); split the dataset into several files", storage.MaxDatasetSize))
	}
	return f.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Create makes the dataset row and a signed upload URL. The storage path
// is built here ({user}/{dataset}/{sanitized name}); clients cannot pick it.
func (s *Service) Create(ctx context.Context, userID string, r CreateRequest) (Upload, error) {
	if err := validateCreate(&r); err != nil {
		return Upload{}, err
	}
	id := uuid.NewString()
	path := userID + "/" + id + "/" + storage.SanitizeFileName(r.FileName)
	d, err := s.Store.DatasetCreate(ctx, store.DatasetCreateParams{ID: id, UserID: userID, Name: r.Name, Description: r.Description,
		Format: r.Format, StoragePath: path, FileName: r.FileName, FileSize: r.FileSize})
	if err != nil {
		return Upload{}, err
	}
	return s.uploadURL(ctx, d)
}

func (s *Service) uploadURL(ctx context.Context, d store.Dataset) (Upload, error) {
	ct := "application/json"
	if strings.HasSuffix(strings.ToLower(d.StoragePath), ".jsonl") {
		ct = "application/x-jsonlines"
	}
	url, headers, err := s.Storage.SignedUploadURL(ctx, storage.BucketDatasets, d.StoragePath, storage.UploadOptions{MaxSize: d.FileSize, ContentType: ct, TTL: uploadTTL})
	if err != nil {
		return Upload{}, fmt.Errorf("sign upload URL: %w", err)
	}
	return Upload{Dataset: d, UploadURL: url, UploadMethod: "PUT", UploadHeaders: headers, StoragePath: d.StoragePath, ExpiresAt: s.Now().UTC().Add(uploadTTL)}, nil
}

// RenewUpload issues a fresh upload URL while the dataset awaits its file.
func (s *Service) RenewUpload(ctx context.Context, userID, id string) (Upload, error) {
	d, err := s.Store.DatasetGet(ctx, userID, id)
	if err != nil {
		return Upload{}, err
	}
	if d.Status != store.DatasetUploading {
		return Upload{}, apperr.Conflict("dataset is %s: its file was already uploaded", d.Status)
	}
	return s.uploadURL(ctx, d)
}

// Confirm checks the uploaded object and queues validation. Confirming
// twice is harmless.
func (s *Service) Confirm(ctx context.Context, userID, id string) (store.Dataset, error) {
	d, err := s.Store.DatasetGet(ctx, userID, id)
	if err != nil {
		return d, err
	}
	if d.Status != store.DatasetUploading {
		return d, nil
	}
	info, err := s.Storage.Stat(ctx, storage.BucketDatasets, d.StoragePath)
	if errors.Is(err, storage.ErrNotFound) {
		return d, apperr.Conflict("the file has not been uploaded yet: PUT it to the uploadUrl, then confirm (POST /api/datasets/%s/upload-url gives a fresh URL)", d.ID)
	}
	if err != nil {
		return d, err
	}
	if info.Size != d.FileSize {
		return d, apperr.Validation(fmt.Sprintf("the uploaded file has %d bytes but %d were declared: upload the complete file again", info.Size, d.FileSize),
			map[string]any{"declared_size": d.FileSize, "uploaded_size": info.Size})
	}
	d, err = s.Store.DatasetStartValidation(ctx, userID, id)
	if err != nil {
		return d, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return d, nil
}

// Delete soft-deletes the dataset and removes its object (retried by the
// sweeper when storage is unavailable).
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	d, err := s.Store.DatasetSoftDelete(ctx, userID, id, s.Now().UTC())
	if err != nil {
		return err
	}
	sys := store.AsSystem(context.WithoutCancel(ctx))
	if err := s.Storage.Delete(sys, storage.BucketDatasets, d.StoragePath); err != nil {
		s.Log.Warn("dataset object delete failed; the sweeper will retry", "dataset", d.ID, "err", err)
		return nil
	}
	return s.Store.DatasetMarkObjectDeleted(sys, d.ID, s.Now().UTC())
}
