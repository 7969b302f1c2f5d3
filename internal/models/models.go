// Package models is the trained-adapter domain: the model list and detail
// pages, signed download URLs, a streamed .tar.gz of the adapter, rename,
// archive and delete.
package models

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the model routes.
type Handlers struct {
	Store   store.Store
	Storage storage.Storage
	UI      *ui.Renderer
	Log     *slog.Logger
	Now     func() time.Time
	// PublicURL is the server's address, for the /v1 snippets.
	PublicURL string
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/models", h.list)
	m.API("GET /api/models/{id}", h.get)
	m.API("PATCH /api/models/{id}", h.update)
	m.API("DELETE /api/models/{id}", h.delete)
	m.API("POST /api/models/{id}/download", h.download)
	m.API("GET /api/models/{id}/archive", h.archive)
	m.Page("GET /models", h.listPage)
	m.Page("GET /models/{id}", h.detailPage)
}

func uid(r *http.Request) string { return auth.UserID(r) }

// File is one stored adapter file.
type File struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	StoragePath string `json:"storage_path"`
}

// Artifacts is the model_artifacts.artifacts column.
type Artifacts struct {
	Bucket string          `json:"bucket"`
	Prefix string          `json:"prefix"`
	Files  []File          `json:"files"`
	Eval   json.RawMessage `json:"eval,omitempty"`
}

func artifactsOf(m store.Model) Artifacts {
	var a Artifacts
	_ = json.Unmarshal(m.Artifacts, &a)
	return a
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
	var q map[string]any
	_ = json.Unmarshal(m.QualityMetrics, &q)
	v, ok := q[store.ModelSortKey].(float64)
	if !ok || math.IsNaN(v) {
		return nil
	}
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

// View is a model with its decoded parts.
type View struct {
	store.Model
	Rating  *Rating        `json:"rating"`
	Files   []File         `json:"files"`
	Quality map[string]any `json:"-"`
	Summary map[string]any `json:"-"`
	Eval    *Eval          `json:"-"`
}

// Eval is the trainer's eval.json as the page shows it.
type Eval struct {
	Samples []struct {
		Prompt    string `json:"prompt"`
		Reference string `json:"reference"`
		Base      string `json:"base"`
		Adapter   string `json:"adapter"`
	} `json:"samples"`
	// SamplesFrom is the split the sample prompts come from: "validation"
	// (held out) or "train" (there was no validation split).
	SamplesFrom string `json:"samples_from"`
	// HeldOut: the prompts were never trained on (set by view).
	HeldOut bool `json:"-"`
}

func view(m store.Model) View {
	v := View{Model: m, Rating: RateModel(m), Files: artifactsOf(m).Files}
	_ = json.Unmarshal(m.QualityMetrics, &v.Quality)
	_ = json.Unmarshal(m.TrainingSummary, &v.Summary)
	if e := artifactsOf(m).Eval; len(e) > 0 {
		var ev Eval
		if json.Unmarshal(e, &ev) == nil {
			// Older artifacts lack samples_from: a rating means a validation split.
			ev.HeldOut = ev.SamplesFrom == "validation" || (ev.SamplesFrom == "" && v.Rating != nil)
			v.Eval = &ev
		}
	}
	if v.Files == nil {
		v.Files = []File{}
	}
	return v
}

func (h *Handlers) listData(r *http.Request, def int) (map[string]any, error) {
	q := r.URL.Query()
	p := store.ModelListParams{UserID: uid(r), Sort: q.Get("sort")}
	f := apperr.FieldErrors{}
	if p.Sort != "" && p.Sort != "newest" && p.Sort != "quality" {
		f.Add("sort", "use newest or quality")
	}
	p.Page, p.Limit = httpx.Paging(q, def, f)
	if err := f.Err(); err != nil {
		return nil, err
	}
	list, total, err := h.Store.ModelList(r.Context(), p)
	if err != nil {
		return nil, err
	}
	views := make([]View, 0, len(list))
	for _, m := range list {
		views = append(views, view(m))
	}
	return map[string]any{"models": views, "total": total, "page": p.Page, "limit": p.Limit, "totalPages": httpx.TotalPages(total, p.Limit), "sort": p.Sort}, nil
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	d, err := h.listData(r, 20)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, d)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	m, err := h.Store.ModelGet(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"model": view(m), "rating_rule": RatingRule})
}

type patchReq struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Status      *string `json:"status"`
}

func (h *Handlers) update(w http.ResponseWriter, r *http.Request) error {
	var req patchReq
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	f := apperr.FieldErrors{}
	f.Name("name", req.Name)
	f.MaxRunes("description", req.Description, 5000)
	if req.Status != nil && *req.Status != "stored" && *req.Status != "archived" {
		f.Add("status", "use stored or archived")
	}
	if req.Name == nil && req.Description == nil && req.Status == nil {
		f.Add("name", "send name, description and/or status")
	}
	if err := f.Err(); err != nil {
		return err
	}
	m, err := h.Store.ModelUpdate(r.Context(), uid(r), r.PathValue("id"), store.ModelPatch{Name: req.Name, Description: req.Description, Status: req.Status, At: h.Now().UTC()})
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"model": view(m)})
}

func (h *Handlers) delete(w http.ResponseWriter, r *http.Request) error {
	m, err := h.Store.ModelSoftDelete(r.Context(), uid(r), r.PathValue("id"), h.Now().UTC())
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	for _, f := range artifactsOf(m).Files {
		if err := h.Storage.Delete(ctx, storage.BucketModels, f.StoragePath); err != nil {
			h.Log.Warn("model file delete failed", "model", m.ID, "file", f.Name, "err", err)
		}
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"deleted": true})
}

type downloadReq struct {
	Files []string `json:"files"`
}

// DownloadURL is one signed link.
type DownloadURL struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Size      int64     `json:"size"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *Handlers) download(w http.ResponseWriter, r *http.Request) error {
	var req downloadReq
	if r.ContentLength != 0 {
		if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
			return err
		}
	}
	m, err := h.Store.ModelGet(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range req.Files {
		want[n] = true
	}
	var out []DownloadURL
	for _, f := range artifactsOf(m).Files {
		if len(want) > 0 && !want[f.Name] {
			continue
		}
		delete(want, f.Name)
		u, err := h.Storage.SignedDownloadURL(r.Context(), storage.BucketModels, f.StoragePath, time.Hour, path.Base(f.Name))
		if err != nil {
			return err
		}
		out = append(out, DownloadURL{Name: f.Name, URL: u, Size: f.Size, ExpiresAt: h.Now().UTC().Add(time.Hour)})
	}
	for n := range want {
		return apperr.Validation("validation failed", map[string]string{"files": fmt.Sprintf("%q is not a file of this model", n)})
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"urls": out})
}

// archive streams a .tar.gz of the adapter files straight from storage.
func (h *Handlers) archive(w http.ResponseWriter, r *http.Request) error {
	m, err := h.Store.ModelGet(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	files := artifactsOf(m).Files
	name := strings.Map(func(c rune) rune {
		if c < 128 && (c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return c
		}
		return '-'
	}, m.Name)
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.tar.gz"`, name))
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		rc, err := h.Storage.Open(r.Context(), storage.BucketModels, f.StoragePath)
		if err != nil {
			h.Log.Error("archive: open", "model", m.ID, "file", f.Name, "err", err)
			return nil // headers are sent: the truncated archive fails to unpack
		}
		hdr := &tar.Header{Name: "adapter/" + f.Name, Mode: 0o644, Size: f.Size, ModTime: m.CreatedAt}
		if err := tw.WriteHeader(hdr); err == nil {
			_, err = io.Copy(tw, rc)
		}
		rc.Close()
		if err != nil {
			return nil
		}
	}
	_ = tw.Close()
	_ = gz.Close()
	return nil
}

func (h *Handlers) listPage(w http.ResponseWriter, r *http.Request) error {
	d, err := h.listData(r, 24)
	if err != nil {
		return err
	}
	return h.UI.Render(w, http.StatusOK, "models", ui.PageFor(r, "Models", "models", d))
}

func (h *Handlers) detailPage(w http.ResponseWriter, r *http.Request) error {
	m, err := h.Store.ModelGet(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	job, err := h.Store.JobGet(r.Context(), uid(r), m.JobID)
	if err != nil {
		return err
	}
	var hp map[string]any
	_ = json.Unmarshal(job.Hyperparameters, &hp)
	p := ui.PageFor(r, m.Name, "models", map[string]any{"M": view(m), "Rule": RatingRule, "Job": job, "Hyper": hp,
		"FTID": inference.AdapterModelID(m), "V1": strings.TrimRight(h.PublicURL, "/") + "/v1"})
	p.Page = "model-detail"
	return h.UI.Render(w, http.StatusOK, "model_detail", p)
}
