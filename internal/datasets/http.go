package datasets

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the dataset routes.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("POST /api/datasets", h.create)
	m.API("GET /api/datasets", h.list)
	m.API("GET /api/datasets/{id}", h.get)
	m.API("PATCH /api/datasets/{id}", h.update)
	m.API("DELETE /api/datasets/{id}", h.delete)
	m.API("POST /api/datasets/{id}/confirm", h.confirm)
	m.API("POST /api/datasets/{id}/upload-url", h.renew)
	m.API("GET /api/datasets/{id}/errors.csv", h.errorsCSV)
	m.API("GET /api/datasets/{id}/examples", h.examples)

	m.Page("GET /datasets", h.listPage)
	m.Page("GET /datasets/new", h.newPage)
	m.Page("GET /datasets/{id}", h.detailPage)
	m.Page("POST /datasets/{id}/delete", h.deleteForm)
}

func userID(r *http.Request) string { return auth.UserID(r) }

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	var req CreateRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	up, err := h.Svc.Create(r.Context(), userID(r), req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, up)
}

// parseList reads page, limit (≤ 100), status and search.
func parseList(r *http.Request, defLimit int) (store.DatasetListParams, error) {
	q := r.URL.Query()
	f := apperr.FieldErrors{}
	p := store.DatasetListParams{UserID: userID(r), Status: q.Get("status"), Search: q.Get("search")}
	p.Page, p.Limit = httpx.Paging(q, defLimit, f)
	return p, f.Err()
}

func (h *Handlers) listResult(r *http.Request, defLimit int) (ListResult, error) {
	p, err := parseList(r, defLimit)
	if err != nil {
		return ListResult{}, err
	}
	return h.Svc.List(r.Context(), p)
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	res, err := h.listResult(r, 20)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, res)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Svc.Get(r.Context(), userID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"dataset": d})
}

func (h *Handlers) update(w http.ResponseWriter, r *http.Request) error {
	var req Patch
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	d, err := h.Svc.Update(r.Context(), userID(r), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"dataset": d})
}

func (h *Handlers) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.Svc.Delete(r.Context(), userID(r), r.PathValue("id")); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (h *Handlers) confirm(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Svc.Confirm(r.Context(), userID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"dataset": d})
}

func (h *Handlers) renew(w http.ResponseWriter, r *http.Request) error {
	up, err := h.Svc.RenewUpload(r.Context(), userID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, up)
}

func (h *Handlers) listPage(w http.ResponseWriter, r *http.Request) error {
	res, err := h.listResult(r, 12)
	if err != nil {
		return err
	}
	return h.UI.Render(w, http.StatusOK, "datasets", ui.PageFor(r, "Datasets", "datasets", res))
}

func (h *Handlers) newPage(w http.ResponseWriter, r *http.Request) error {
	data := map[string]any{"MaxSize": int64(500 << 20), "Formats": Formats}
	// "Upload a corrected file": the new dataset keeps the old one's name
	// and description; the page deletes the old one once the new is uploaded.
	if id := r.URL.Query().Get("replace"); id != "" {
		d, err := h.Svc.Get(r.Context(), userID(r), id)
		if err != nil {
			return err
		}
		data["Replace"] = d
	}
	p := ui.PageFor(r, "Upload dataset", "datasets", data)
	p.Page = "dataset-new"
	return h.UI.Render(w, http.StatusOK, "dataset_new", p)
}

func (h *Handlers) detailPage(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Svc.Get(r.Context(), userID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	p := ui.PageFor(r, d.Name, "datasets", newDetailView(d))
	p.Page = "dataset-detail"
	return h.UI.Render(w, http.StatusOK, "dataset_detail", p)
}

func (h *Handlers) deleteForm(w http.ResponseWriter, r *http.Request) error {
	if err := h.Svc.Delete(r.Context(), userID(r), r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, "/datasets?flash="+url.QueryEscape("Dataset deleted."), http.StatusSeeOther)
	return nil
}

// errorsCSV is the dataset's error report as CSV: every kept error (the
// first 100; the header row's last column says how many there were).
func (h *Handlers) errorsCSV(w http.ResponseWriter, r *http.Request) error {
	d, issues, err := h.Svc.ErrorReport(r.Context(), userID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-errors.csv"`, safeFileName(d.Name)))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"line", "column", "field", "code", "problem", "how_to_fix", fmt.Sprintf("%d of %d errors", len(issues), d.ErrorCount)})
	for _, e := range issues {
		_ = cw.Write([]string{strconv.Itoa(e.Line), strconv.Itoa(e.Column), cell(e.Field), e.Code, cell(e.Error), cell(e.Suggestion), ""})
	}
	cw.Flush()
	return cw.Error()
}

// cell keeps spreadsheet programs from reading a value as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func safeFileName(name string) string {
	out := []rune{}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			out = append(out, c)
		default:
			out = append(out, '-')
		}
	}
	if len(out) == 0 || len(out) > 80 {
		return "dataset"
	}
	return string(out)
}

// examples pages through the dataset's trainable examples (?page, ?limit
// 1–50, default 5, ?q to search their text).
func (h *Handlers) examples(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := apperr.FieldErrors{}
	page, limit := httpx.Paging(q, 5, f)
	if limit > 50 {
		f.Add("limit", "use a whole number from 1 to 50")
	}
	text := q.Get("q")
	f.MaxRunes("q", &text, 200)
	if err := f.Err(); err != nil {
		return err
	}
	p, err := h.Svc.Examples(r.Context(), userID(r), r.PathValue("id"), text, page, limit)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, p)
}
