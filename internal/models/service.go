// Package models is the trained-adapter domain: the model list and detail
// pages, signed download URLs, a streamed .tar.gz of the adapter, rename,
// archive and delete. service.go holds the rules, http.go parses and
// answers, view.go renders the pages.
package models

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

// Service holds the model rules: listing and rating, rename/describe/archive,
// delete with its files, signed downloads and the streamed archive.
type Service struct {
	Store   store.Store
	Storage storage.Storage
	Log     *slog.Logger
	Now     func() time.Time
}

// Rating is the 1–5 quality rating computed from the evaluation.
type Rating struct {
	Stars int     `json:"stars"`
	Basis string  `json:"basis"`
	Value float64 `json:"perplexity_improvement_pct"`
}

// RatingRule explains how stars are given (shown on the page).
const RatingRule = "Stars come from how much the adapter lowers validation perplexity against the base model on the held-out conversations: ≥ 50 % → 5, ≥ 30 % → 4, ≥ 15 % → 3, ≥ 5 % → 2, otherwise 1; no rating without a validation split."

// RateModel computes the rating from the quality metrics.
func RateModel(m store.Model) *Rating {
	p := jobdoc.Finite(m.QualityMetrics.PerplexityImprovementPct)
	if p == nil {
		return nil
	}
	v := *p
	stars := 1
	for _, t := range []struct {
		min   float64
		stars int
	}{{50, 5}, {30, 4}, {15, 3}, {5, 2}} {
		if v >= t.min {
			stars = t.stars
			break
		}
	}
	return &Rating{Stars: stars, Value: v, Basis: fmt.Sprintf("perplexity %.1f%% lower than the base model", v)}
}

// View is a model with its rating, as the API and the pages show it.
type View struct {
	store.Model
	Rating *Rating       `json:"rating"`
	Files  []jobdoc.File `json:"files"`
	Eval   *Eval         `json:"-"`
}

// Eval is the model's evaluation as the page shows it.
type Eval struct {
	Samples []jobdoc.EvalSample
	// HeldOut: the sample prompts were never trained on (they come from the
	// validation split).
	HeldOut bool
}

func view(m store.Model) View {
	v := View{Model: m, Rating: RateModel(m), Files: m.Artifacts.Files}
	if e := m.Artifacts.Eval; e != nil {
		from := ""
		if e.SamplesFrom != nil {
			from = *e.SamplesFrom
		}
		// Older artifacts lack samples_from: a rating means a validation split.
		v.Eval = &Eval{Samples: e.Samples, HeldOut: from == jobdoc.SamplesFromValidation || (from == "" && v.Rating != nil)}
	}
	if v.Files == nil {
		v.Files = []jobdoc.File{}
	}
	return v
}

// ListParams page a user's models.
type ListParams struct {
	UserID      string
	Sort        string // "", newest or quality
	Page, Limit int
}

// List is one page of models; its JSON is the API's answer.
type List struct {
	Models     []View `json:"models"`
	Total      int    `json:"total"`
	Page       int    `json:"page"`
	Limit      int    `json:"limit"`
	TotalPages int    `json:"totalPages"`
	Sort       string `json:"sort"`
}

// List pages the user's models, newest first or by quality across pages.
func (s *Service) List(ctx context.Context, p ListParams) (List, error) {
	list, total, err := s.Store.ModelList(ctx, store.ModelListParams{UserID: p.UserID, Sort: p.Sort, Page: p.Page, Limit: p.Limit})
	if err != nil {
		return List{}, err
	}
	views := make([]View, 0, len(list))
	for _, m := range list {
		views = append(views, view(m))
	}
	return List{Models: views, Total: total, Page: p.Page, Limit: p.Limit, TotalPages: httpx.TotalPages(total, p.Limit), Sort: p.Sort}, nil
}

// Get loads one of the user's models.
func (s *Service) Get(ctx context.Context, userID, id string) (View, error) {
	m, err := s.Store.ModelGet(ctx, userID, id)
	if err != nil {
		return View{}, err
	}
	return view(m), nil
}

// Detail is a model with the job that trained it (the detail page).
type Detail struct {
	Model View
	Job   store.Job
	Hyper []Setting
}

// Setting is one hyperparameter as the detail page lists it.
type Setting struct {
	Key   string
	Value any // as JSON decodes it: the page prints it as the API shows it
}

// settings lists the hyperparameters the job set, by name.
func settings(h catalog.Hyperparameters) ([]Setting, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	out := make([]Setting, 0, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		out = append(out, Setting{Key: k, Value: fields[k]})
	}
	return out, nil
}

// Detail loads a model and its job.
func (s *Service) Detail(ctx context.Context, userID, id string) (Detail, error) {
	m, err := s.Store.ModelGet(ctx, userID, id)
	if err != nil {
		return Detail{}, err
	}
	job, err := s.Store.JobGet(ctx, userID, m.JobID)
	if err != nil {
		return Detail{}, err
	}
	hp, err := settings(job.Hyperparameters)
	if err != nil {
		return Detail{}, err
	}
	return Detail{Model: view(m), Job: job, Hyper: hp}, nil
}

// Patch changes a model's name, description or status.
type Patch struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Status      *string `json:"status"`
}

// Update validates the patch and applies it.
func (s *Service) Update(ctx context.Context, userID, id string, p Patch) (View, error) {
	f := apperr.FieldErrors{}
	f.Name("name", p.Name)
	f.MaxRunes("description", p.Description, 5000)
	if p.Status != nil && *p.Status != "stored" && *p.Status != "archived" {
		f.Add("status", "use stored or archived")
	}
	if p.Name == nil && p.Description == nil && p.Status == nil {
		f.Add("name", "send name, description and/or status")
	}
	if err := f.Err(); err != nil {
		return View{}, err
	}
	m, err := s.Store.ModelUpdate(ctx, userID, id, store.ModelPatch{Name: p.Name, Description: p.Description, Status: p.Status, At: s.Now().UTC()})
	if err != nil {
		return View{}, err
	}
	return view(m), nil
}

// Delete soft-deletes the model and its exports and removes their files from storage (a file
// that cannot be removed is logged: the model is gone either way).
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	exports, err := s.Store.ModelExportList(ctx, userID, id)
	if err != nil {
		return err
	}
	m, err := s.Store.ModelSoftDelete(ctx, userID, id, s.Now().UTC())
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	for _, e := range exports {
		gone, err := s.Store.ModelExportDelete(store.AsSystem(ctx), userID, id, e.ID, s.Now().UTC())
		if err != nil {
			s.Log.Warn("export delete failed", "model", id, "export", e.ID, "err", err)
			continue
		}
		s.removeExportFile(ctx, gone)
	}
	for _, f := range m.Artifacts.Files {
		if err := s.Storage.Delete(ctx, storage.BucketModels, f.StoragePath); err != nil {
			s.Log.Warn("model file delete failed", "model", m.ID, "file", f.Name, "err", err)
		}
	}
	return nil
}

// DownloadURL is one signed link.
type DownloadURL struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Size      int64     `json:"size"`
	ExpiresAt time.Time `json:"expires_at"`
}

// downloadTTL is how long a signed download link works.
const downloadTTL = time.Hour

// DownloadURLs signs a link for each named file of the model (none named:
// every file); a name that is not a file of the model is refused.
func (s *Service) DownloadURLs(ctx context.Context, userID, id string, names []string) ([]DownloadURL, error) {
	m, err := s.Store.ModelGet(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []DownloadURL
	for _, f := range m.Artifacts.Files {
		if len(want) > 0 && !want[f.Name] {
			continue
		}
		delete(want, f.Name)
		u, err := s.Storage.SignedDownloadURL(ctx, storage.BucketModels, f.StoragePath, downloadTTL, path.Base(f.Name))
		if err != nil {
			return nil, err
		}
		out = append(out, DownloadURL{Name: f.Name, URL: u, Size: f.Size, ExpiresAt: s.Now().UTC().Add(downloadTTL)})
	}
	for n := range want {
		return nil, apperr.Validation("validation failed", map[string]string{"files": fmt.Sprintf("%q is not a file of this model", n)})
	}
	return out, nil
}

// ArchiveName is the model's name made safe for a file name.
func ArchiveName(m store.Model) string {
	return strings.Map(func(c rune) rune {
		if c < 128 && (c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return c
		}
		return '-'
	}, m.Name) + ".tar.gz"
}

// WriteArchive streams a .tar.gz of the model's adapter files straight from
// storage into w. Once it has begun writing, a failure leaves a truncated
// archive (that fails to unpack): it is logged and returned.
func (s *Service) WriteArchive(ctx context.Context, w io.Writer, m store.Model) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range m.Artifacts.Files {
		if err := s.archiveFile(ctx, tw, m, f); err != nil {
			s.Log.Error("archive", "model", m.ID, "file", f.Name, "err", err)
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func (s *Service) archiveFile(ctx context.Context, tw *tar.Writer, m store.Model, f jobdoc.File) error {
	rc, err := s.Storage.Open(ctx, storage.BucketModels, f.StoragePath)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Name: "adapter/" + f.Name, Mode: 0o644, Size: f.Size, ModTime: m.CreatedAt}); err != nil {
		return err
	}
	_, err = io.Copy(tw, rc)
	return err
}
