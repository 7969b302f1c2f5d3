package notify

import (
	"net/http"
	"strconv"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the notification routes: parse, call the service, answer.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/notifications", h.list)
	m.API("PATCH /api/notifications/{id}/read", h.read)
	m.API("POST /api/notifications/read-all", h.readAll)
	m.Page("GET /notifications", h.page)
}

// listParams reads ?limit= and ?unread= (def is the page's default size).
func listParams(r *http.Request, def int) (ListParams, error) {
	q := r.URL.Query()
	p := ListParams{UserID: auth.UserID(r), Limit: def}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, apperr.Validation("validation failed", map[string]string{"limit": "use a whole number from 1 to 100"})
		}
		p.Limit = n
	}
	if v := q.Get("unread"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p, apperr.Validation("validation failed", map[string]string{"unread": "use true or false"})
		}
		p.UnreadOnly = b
	}
	return p, nil
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

func (h *Handlers) read(w http.ResponseWriter, r *http.Request) error {
	if err := h.Svc.MarkRead(r.Context(), auth.UserID(r), r.PathValue("id")); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"read": true})
}

func (h *Handlers) readAll(w http.ResponseWriter, r *http.Request) error {
	n, err := h.Svc.MarkAllRead(r.Context(), auth.UserID(r))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]int64{"marked": n})
}
