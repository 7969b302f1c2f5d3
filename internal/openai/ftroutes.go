package openai

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
)

// FineTuneHandlers are the /v1 files and fine-tuning routes.
type FineTuneHandlers struct {
	Files *Files
	FT    *FineTuning
}

// MountFineTuning registers the routes (each requires a signed-in user;
// API tokens as the bearer, no CSRF).
func (h *FineTuneHandlers) MountFineTuning(m *server.Mux) {
	m.API("POST /v1/files", h.upload)
	m.API("GET /v1/files", h.listFiles)
	m.API("GET /v1/files/{id}", h.getFile)
	m.API("GET /v1/files/{id}/content", h.fileContent)
	m.API("DELETE /v1/files/{id}", h.deleteFile)

	m.API("POST /v1/fine_tuning/jobs", h.createJob)
	m.API("GET /v1/fine_tuning/jobs", h.listJobs)
	m.API("GET /v1/fine_tuning/jobs/{id}", h.getJob)
	m.API("POST /v1/fine_tuning/jobs/{id}/cancel", h.cancelJob)
	m.API("POST /v1/fine_tuning/jobs/{id}/pause", h.pauseJob)
	m.API("POST /v1/fine_tuning/jobs/{id}/resume", h.resumeJob)
	m.API("GET /v1/fine_tuning/jobs/{id}/events", h.events)
	m.API("GET /v1/fine_tuning/jobs/{id}/checkpoints", h.checkpoints)
}

func uid(r *http.Request) string { return auth.UserID(r) }

// query checks that only known parameters were sent (metadata[k] counts as
// metadata) and reads limit within [1, max] (def when absent).
func query(q url.Values, known []string, def, max int) (int, error) {
	f := apperr.FieldErrors{}
	for k := range q {
		name := k
		if i := strings.IndexByte(k, '['); i > 0 {
			name = k[:i]
		}
		if !contains(known, name) {
			f.Add(k, "unknown query parameter: use "+strings.Join(known, ", "))
		}
	}
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			f.Add("limit", fmt.Sprintf("use a whole number from 1 to %d", max))
		}
		limit = n
	}
	return limit, f.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (h *FineTuneHandlers) upload(w http.ResponseWriter, r *http.Request) error {
	f, err := h.Files.Upload(r.Context(), uid(r), r)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, f)
	return nil
}

func (h *FineTuneHandlers) listFiles(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := query(q, []string{"purpose", "limit", "after", "order"}, maxFiles, maxFiles)
	if err != nil {
		return err
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		return apperr.Validation("bad order", map[string]string{"order": "use asc or desc"})
	}
	list, err := h.Files.List(r.Context(), uid(r), FileListParams{Purpose: q.Get("purpose"), Limit: limit, After: q.Get("after"), Order: order})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list)
	return nil
}

func (h *FineTuneHandlers) getFile(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if rf, _, ok, err := h.FT.ResultFile(r.Context(), uid(r), id); ok {
		if err != nil {
			return err
		}
		httpx.JSON(w, http.StatusOK, rf)
		return nil
	}
	d, err := h.Files.Get(r.Context(), uid(r), id)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, fileView(d))
	return nil
}

func (h *FineTuneHandlers) fileContent(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, f, ok, err := h.FT.ResultFile(r.Context(), uid(r), id); ok {
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		return h.FT.WriteResults(r.Context(), f, w)
	}
	d, err := h.Files.Get(r.Context(), uid(r), id)
	if err != nil {
		return err
	}
	rc, err := h.Files.Content(r.Context(), d)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(d.FileSize, 10))
	_, err = io.Copy(w, rc)
	return err
}

func (h *FineTuneHandlers) deleteFile(w http.ResponseWriter, r *http.Request) error {
	out, err := h.Files.Delete(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func (h *FineTuneHandlers) createJob(w http.ResponseWriter, r *http.Request) error {
	var req CreateJobRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	j, err := h.FT.Create(r.Context(), uid(r), req)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func (h *FineTuneHandlers) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := query(q, []string{"after", "limit", "metadata"}, 20, 100)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for k, v := range q {
		if key, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(key, "]") {
			meta[strings.TrimSuffix(key, "]")] = v[0]
		} else if k == "metadata" {
			return apperr.Validation("bad metadata filter", map[string]string{"metadata": "filter with metadata[key]=value"})
		}
	}
	list, err := h.FT.List(r.Context(), uid(r), JobListParams{After: q.Get("after"), Limit: limit, Metadata: meta})
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list)
	return nil
}

func (h *FineTuneHandlers) getJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.FT.Get(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func (h *FineTuneHandlers) cancelJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.FT.Cancel(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func (h *FineTuneHandlers) pauseJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.FT.Pause(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func (h *FineTuneHandlers) resumeJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.FT.Resume(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func (h *FineTuneHandlers) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := query(q, []string{"after", "limit"}, 20, 100)
	if err != nil {
		return err
	}
	list, err := h.FT.Events(r.Context(), uid(r), r.PathValue("id"), q.Get("after"), limit)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list)
	return nil
}

func (h *FineTuneHandlers) checkpoints(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := query(q, []string{"after", "limit"}, 10, 100)
	if err != nil {
		return err
	}
	list, err := h.FT.Checkpoints(r.Context(), uid(r), r.PathValue("id"), q.Get("after"), limit)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, list)
	return nil
}
