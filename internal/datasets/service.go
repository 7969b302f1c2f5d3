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
	// UploadsGuarded is set at wiring when Storage asks UploadAllowed before
	// accepting a signed upload (local backend): a deleted dataset's object
	// is then removed at once. Otherwise (S3) upload URLs cannot be revoked,
	// so Delete overwrites the object with an empty tombstone that the
	// write-once URLs cannot replace, and the sweeper removes it once every
	// upload URL has expired.
	UploadsGuarded bool
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
	d, err := s.Store.DatasetCreate(ctx, store.DatasetCreateParams{At: s.Now().UTC(), ID: id, UserID: userID, Name: r.Name, Description: r.Description,
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
	// Write-once: the URL can never replace an uploaded (and then confirmed)
	// object; see also UploadAllowed.
	url, headers, err := s.Storage.SignedUploadURL(ctx, storage.BucketDatasets, d.StoragePath,
		storage.UploadOptions{MaxSize: d.FileSize, ContentType: ct, TTL: uploadTTL, CreateOnly: true})
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
		// Upload URLs are write-once: remove the wrong object so that the
		// complete file can be PUT again.
		if err := s.Storage.Delete(ctx, storage.BucketDatasets, d.StoragePath); err != nil {
			return d, err
		}
		return d, apperr.Validation(fmt.Sprintf("the uploaded file has %d bytes but %d were declared: upload the complete file again", info.Size, d.FileSize),
			map[string]any{"declared_size": d.FileSize, "uploaded_size": info.Size})
	}
	d, err = s.Store.DatasetStartValidation(ctx, userID, id, s.Now().UTC())
	if err != nil {
		return d, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return d, nil
}

// UploadAllowed is the datasets bucket's storage.UploadGuard: a signed
// upload may write a dataset's object only while that dataset exists and
// is still uploading. Once confirmed the object is immutable; once deleted
// nothing may be written.
func (s *Service) UploadAllowed(ctx context.Context, bucket, path string) error {
	parts := strings.SplitN(path, "/", 3)
	if bucket != storage.BucketDatasets || len(parts) != 3 {
		return fmt.Errorf("%w: no dataset uses this path", storage.ErrUploadClosed)
	}
	d, err := s.Store.DatasetGet(store.AsSystem(ctx), parts[0], parts[1])
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind == apperr.KindNotFound {
		return fmt.Errorf("%w: the dataset was deleted", storage.ErrUploadClosed)
	}
	if err != nil {
		return err
	}
	if d.StoragePath != path {
		return fmt.Errorf("%w: no dataset uses this path", storage.ErrUploadClosed)
	}
	if d.Status != store.DatasetUploading {
		return fmt.Errorf("%w: the dataset is %s: its file was confirmed and can no longer be replaced", storage.ErrUploadClosed, d.Status)
	}
	return nil
}

// uploadWindow is how long after a dataset's deletion one of its upload
// URLs may still be presented (uploadTTL, plus clock skew).
const uploadWindow = uploadTTL + 5*time.Minute

// Delete soft-deletes the dataset and removes its object (retried by the
// sweeper when storage is unavailable). Without an upload guard the object
// is replaced by an empty tombstone instead, removed by the sweeper after
// uploadWindow, so a late PUT on a still valid URL cannot leave an orphan.
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	d, err := s.Store.DatasetSoftDelete(ctx, userID, id, s.Now().UTC())
	if err != nil {
		return err
	}
	sys := store.AsSystem(context.WithoutCancel(ctx))
	if !s.UploadsGuarded {
		if err := s.Storage.Put(sys, storage.BucketDatasets, d.StoragePath, strings.NewReader(""), 0, ""); err != nil {
			s.Log.Warn("dataset tombstone write failed; the sweeper will delete the object", "dataset", d.ID, "err", err)
		}
		return nil
	}
	if err := s.Storage.Delete(sys, storage.BucketDatasets, d.StoragePath); err != nil {
		s.Log.Warn("dataset object delete failed; the sweeper will retry", "dataset", d.ID, "err", err)
		return nil
	}
	return s.Store.DatasetMarkObjectDeleted(sys, d.ID, s.Now().UTC())
}
