// Package openai is the OpenAI-compatible face (/v1). This part serves the
// Files and Fine-tuning APIs: a file is a BrightRun dataset, a fine-tuning
// job a BrightRun training job, both created through their own domain
// services (datasets, training, jobs), so validation, limits, budgets and
// cross-user isolation are the ones /api applies. Objects, ids and errors
// take OpenAI's shapes.
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
)

// File is OpenAI's file object.
type File struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	ExpiresAt     *int64  `json:"expires_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	StatusDetails *string `json:"status_details"`
}

// FileDeleted answers DELETE /v1/files/{id}.
type FileDeleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// List is OpenAI's cursor page.
type List[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id,omitempty"`
	LastID  *string `json:"last_id,omitempty"`
	HasMore bool    `json:"has_more"`
}

// Purposes: uploads must be fine-tune; results files are ours.
const (
	PurposeFineTune = "fine-tune"
	PurposeResults  = "fine-tune-results"
)

// fileView words a dataset as a file. Validation maps onto OpenAI's file
// statuses: uploaded (still validating), processed (ready), error (with
// the first error and its line in status_details).
func fileView(d store.Dataset) File {
	f := File{ID: FileID(d.ID), Object: "file", Bytes: d.FileSize, CreatedAt: d.CreatedAt.Unix(), Filename: d.FileName, Purpose: PurposeFineTune, Status: "uploaded"}
	switch d.Status {
	case store.DatasetReady:
		f.Status = "processed"
		if !d.TrainingReady {
			f.Status = "error"
			msg := "the file has no trainable examples"
			f.StatusDetails = &msg
		}
	case store.DatasetError:
		f.Status = "error"
		msg := fileProblem(d)
		f.StatusDetails = &msg
	}
	return f
}

// fileProblem is the first validation error of a dataset, naming its line.
func fileProblem(d store.Dataset) string {
	issues := d.ValidationErrors
	if len(issues) == 0 {
		return "the file failed validation"
	}
	i := issues[0]
	msg := i.Error
	if i.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", i.Line, i.Error)
	}
	if i.Suggestion != "" {
		msg += " (" + i.Suggestion + ")"
	}
	if d.ErrorCount > 1 {
		msg += fmt.Sprintf("; %d errors in all, listed on the dataset's page", d.ErrorCount)
	}
	return msg
}

// Files serves /v1/files on the datasets service.
type Files struct {
	Datasets *datasets.Service
	Store    store.Store
	Storage  storage.Storage
	// TempDir holds uploads while they stream in (the multipart part's size
	// is known only at its end, and storage writes need it up front).
	TempDir string
}

// Upload reads the multipart form of POST /v1/files as a stream: the file
// part is spooled to a temporary file (constant memory, at most the
// dataset limit), then created, written and confirmed through the datasets
// service, so it is validated like any upload.
func (s *Files) Upload(ctx context.Context, userID string, r *http.Request) (File, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return File{}, apperr.Validation("send multipart/form-data with the fields file and purpose", map[string]string{"file": "send the file as multipart/form-data"})
	}
	var purpose, name string
	var tmp *os.File
	var size int64
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return File{}, apperr.BadRequest("malformed multipart body: %v", err)
		}
		switch part.FormName() {
		case "purpose":
			b, err := io.ReadAll(io.LimitReader(part, 100))
			if err != nil {
				return File{}, apperr.BadRequest("malformed multipart body: %v", err)
			}
			purpose = strings.TrimSpace(string(b))
		case "file":
			if tmp != nil {
				return File{}, apperr.Validation("send one file", map[string]string{"file": "send one file per request"})
			}
			name = filepath.Base(part.FileName())
			if tmp, err = os.CreateTemp(s.TempDir, "v1-upload-*"); err != nil {
				return File{}, err
			}
			size, err = io.Copy(tmp, io.LimitReader(part, storage.MaxDatasetSize+1))
			if err != nil {
				return File{}, apperr.BadRequest("reading the file: %v", err)
			}
			if size > storage.MaxDatasetSize {
				return File{}, apperr.Validation("file too large", map[string]string{"file": fmt.Sprintf("the limit is %d bytes (500 MB); split the dataset into several files", storage.MaxDatasetSize)})
			}
		default:
			// OpenAI's SDKs send nothing else; refuse rather than ignore.
			return File{}, apperr.Validation("unknown field", map[string]string{part.FormName(): "unknown field: send file and purpose"})
		}
	}
	if purpose != PurposeFineTune {
		return File{}, apperr.Validation("unsupported purpose", map[string]string{"purpose": fmt.Sprintf("%q is not supported here: use \"fine-tune\" (BrightRun stores fine-tuning data only)", purpose)})
	}
	if tmp == nil {
		return File{}, apperr.Validation("no file", map[string]string{"file": "send the file"})
	}
	if name == "" || name == "." || name == "/" {
		name = "training.jsonl"
	}
	up, err := s.Datasets.Create(ctx, userID, datasets.CreateRequest{Name: name, FileName: name, FileSize: size})
	if err != nil {
		return File{}, renameFields(err, map[string]string{"file_size": "file", "file_name": "file", "name": "file"})
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return File{}, err
	}
	if err := s.Storage.Put(ctx, storage.BucketDatasets, up.StoragePath, tmp, size, contentType(name)); err != nil {
		_ = s.Datasets.Delete(ctx, userID, up.Dataset.ID)
		return File{}, err
	}
	d, err := s.Datasets.Confirm(ctx, userID, up.Dataset.ID)
	if err != nil {
		return File{}, err
	}
	return fileView(d), nil
}

func contentType(name string) string {
	if strings.HasSuffix(strings.ToLower(name), ".jsonl") {
		return "application/x-jsonlines"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return "application/json"
}

// renameFields maps a domain error's field names onto /v1's parameters.
func renameFields(err error, names map[string]string) error {
	ae, ok := apperr.As(err)
	if !ok {
		return err
	}
	fields, ok := ae.Details.(map[string]string)
	if !ok {
		if f, isF := ae.Details.(apperr.FieldErrors); isF {
			fields, ok = f, true
		}
	}
	if !ok {
		return err
	}
	out := map[string]string{}
	for k, v := range fields {
		if n, ok := names[k]; ok {
			k = n
		}
		out[k] = v
	}
	return &apperr.Error{Kind: ae.Kind, Message: ae.Message, Details: out, Code: ae.Code, Err: ae.Err}
}

// Get returns one of the user's files.
func (s *Files) Get(ctx context.Context, userID, id string) (store.Dataset, error) {
	dsID, ok := ParseFileID(id)
	if !ok {
		return store.Dataset{}, apperr.NotFound("file " + id)
	}
	d, err := s.Store.DatasetGet(ctx, userID, dsID)
	if apperr.Is(err, apperr.KindNotFound) {
		return d, apperr.NotFound("file " + id)
	}
	return d, err
}

// FileListParams are GET /v1/files's query.
type FileListParams struct {
	Purpose string
	Limit   int
	After   string
	Order   string // asc | desc
}

// maxFiles bounds one user's listing (the cursor walks it in memory).
const maxFiles = 10000

// List pages the user's files by created_at in the asked order.
func (s *Files) List(ctx context.Context, userID string, p FileListParams) (List[File], error) {
	out := List[File]{Object: "list", Data: []File{}}
	if p.Purpose != "" && p.Purpose != PurposeFineTune {
		return out, nil // nothing else is stored here
	}
	all, _, err := s.Store.DatasetList(ctx, store.DatasetListParams{UserID: userID, Page: 1, Limit: maxFiles})
	if err != nil {
		return out, err
	}
	slices.SortStableFunc(all, func(a, b store.Dataset) int {
		c := a.CreatedAt.Compare(b.CreatedAt)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if p.Order != "asc" {
			c = -c
		}
		return c
	})
	start := 0
	if p.After != "" {
		dsID, ok := ParseFileID(p.After)
		i := slices.IndexFunc(all, func(d store.Dataset) bool { return d.ID == dsID })
		if !ok || i < 0 {
			return out, apperr.Validation("unknown cursor", map[string]string{"after": "no file of yours has this id: pass the id of the last file of the previous page"})
		}
		start = i + 1
	}
	end := min(len(all), start+p.Limit)
	for _, d := range all[start:end] {
		out.Data = append(out.Data, fileView(d))
	}
	out.HasMore = end < len(all)
	if n := len(out.Data); n > 0 {
		first, last := out.Data[0].ID, out.Data[n-1].ID
		out.FirstID, out.LastID = &first, &last
	}
	return out, nil
}

// Content streams a file's bytes.
func (s *Files) Content(ctx context.Context, d store.Dataset) (io.ReadCloser, error) {
	return s.Storage.Open(ctx, storage.BucketDatasets, d.StoragePath)
}

// Delete removes a file (a dataset a queued, running or paused job uses is a 409).
func (s *Files) Delete(ctx context.Context, userID, id string) (FileDeleted, error) {
	d, err := s.Get(ctx, userID, id)
	if err != nil {
		return FileDeleted{}, err
	}
	if err := s.Datasets.Delete(ctx, userID, d.ID); err != nil {
		return FileDeleted{}, err
	}
	return FileDeleted{ID: id, Object: "file", Deleted: true}, nil
}
