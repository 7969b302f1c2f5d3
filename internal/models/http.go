package models

import (
	"fmt"
	"net/http"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the model routes: parse, call the service, answer.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
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
	m.API("POST /api/models/{id}/exports", h.requestExport)
	m.API("GET /api/models/{id}/exports", h.listExports)
	m.API("GET /api/models/{id}/exports/{eid}/download", h.downloadExport)
	m.API("DELETE /api/models/{id}/exports/{eid}", h.deleteExport)
	m.Page("GET /models", h.listPage)
	m.Page("GET /models/{id}", h.detailPage)
}

// listParams reads ?sort=, ?page= and ?limit= (def is the default page size).
func listParams(r *http.Request, def int) (ListParams, error) {
	q := r.URL.Query()
	p := ListParams{UserID: auth.UserID(r), Sort: q.Get("sort")}
	f := apperr.FieldErrors{}
	if p.Sort != "" && p.Sort != "newest" && p.Sort != "quality" {
		f.Add("sort", "use newest or quality")
	}
	p.Page, p.Limit = httpx.Paging(q, def, f)
	return p, f.Err()
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r, 20)
	if err != nil {
		return err
	}
	l, err := h.Svc.List(r.Context(), p)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, l)
}

type getAnswer struct {
	Model      View   `json:"model"`
	RatingRule string `json:"rating_rule"`
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.Svc.Get(r.Context(), auth.UserID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, getAnswer{Model: v, RatingRule: RatingRule})
}

type modelAnswer struct {
	Model View `json:"model"`
}

func (h *Handlers) update(w http.ResponseWriter, r *http.Request) error {
	var req Patch
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	v, err := h.Svc.Update(r.Context(), auth.UserID(r), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, modelAnswer{Model: v})
}

func (h *Handlers) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.Svc.Delete(r.Context(), auth.UserID(r), r.PathValue("id")); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"deleted": true})
}

type downloadReq struct {
	Files []string `json:"files"`
}

type downloadAnswer struct {
	URLs []DownloadURL `json:"urls"`
}

func (h *Handlers) download(w http.ResponseWriter, r *http.Request) error {
	var req downloadReq
	if r.ContentLength != 0 {
		if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
			return err
		}
	}
	urls, err := h.Svc.DownloadURLs(r.Context(), auth.UserID(r), r.PathValue("id"), req.Files)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, downloadAnswer{URLs: urls})
}

// archive streams a .tar.gz of the adapter files straight from storage.
func (h *Handlers) archive(w http.ResponseWriter, r *http.Request) error {
	v, err := h.Svc.Get(r.Context(), auth.UserID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, ArchiveName(v.Model)))
	// The headers are sent: a failure (logged by the service) leaves a
	// truncated archive that fails to unpack; there is no answer to change.
	_ = h.Svc.WriteArchive(r.Context(), w, v.Model)
	return nil
}

type exportAnswer struct {
	Export Export `json:"export"`
}

// requestExport answers 202 when the export was queued now (new, or a
// failed one again) and 200 with the existing one otherwise.
func (h *Handlers) requestExport(w http.ResponseWriter, r *http.Request) error {
	var req ExportRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	e, queued, err := h.Svc.RequestExport(r.Context(), auth.UserID(r), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if queued {
		code = http.StatusAccepted
	}
	return httpx.OK(w, code, exportAnswer{Export: e})
}

type exportsAnswer struct {
	Exports []Export `json:"exports"`
}

func (h *Handlers) listExports(w http.ResponseWriter, r *http.Request) error {
	list, err := h.Svc.Exports(r.Context(), auth.UserID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, exportsAnswer{Exports: list})
}

// downloadExport redirects to a signed URL of the archive.
func (h *Handlers) downloadExport(w http.ResponseWriter, r *http.Request) error {
	u, err := h.Svc.ExportDownloadURL(r.Context(), auth.UserID(r), r.PathValue("id"), r.PathValue("eid"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

func (h *Handlers) deleteExport(w http.ResponseWriter, r *http.Request) error {
	if err := h.Svc.DeleteExport(r.Context(), auth.UserID(r), r.PathValue("id"), r.PathValue("eid")); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"deleted": true})
}
