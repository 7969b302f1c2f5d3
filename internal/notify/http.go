// Package notify is the in-app notification domain: the API behind the bell
// and the notifications page. Notifications are created by the domains that
// have news (datasets, jobs).
package notify

import (
	"net/http"
	"strconv"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the notification routes.
type Handlers struct {
	Store store.Store
	UI    *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/notifications", h.list)
	m.API("PATCH /api/notifications/{id}/read", h.read)
	m.API("POST /api/notifications/read-all", h.readAll)
	m.Page("GET /notifications", h.page)
}

func uid(r *http.Request) string { return auth.UserID(r) }

// List is the API's answer.
type List struct {
	Notifications []store.Notification `json:"notifications"`
	UnreadCount   int                  `json:"unread_count"`
}

func (h *Handlers) load(r *http.Request, def int) (List, error) {
	q := r.URL.Query()
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return List{}, apperr.Validation("validation failed", map[string]string{"limit": "use a whole number from 1 to 100"})
		}
		limit = n
	}
	unread := false
	if v := q.Get("unread"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return List{}, apperr.Validation("validation failed", map[string]string{"unread": "use true or false"})
		}
		unread = b
	}
	list, n, err := h.Store.NotificationList(r.Context(), uid(r), unread, limit)
	if list == nil {
		list = []store.Notification{}
	}
	return List{Notifications: list, UnreadCount: n}, err
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	l, err := h.load(r, 20)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, l)
}

func (h *Handlers) read(w http.ResponseWriter, r *http.Request) error {
	if err := h.Store.NotificationMarkRead(r.Context(), uid(r), r.PathValue("id")); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"read": true})
}

func (h *Handlers) readAll(w http.ResponseWriter, r *http.Request) error {
	n, err := h.Store.NotificationMarkAllRead(r.Context(), uid(r))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]int64{"marked": n})
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request) error {
	l, err := h.load(r, 100)
	if err != nil {
		return err
	}
	return h.UI.Render(w, http.StatusOK, "notifications", ui.PageFor(r, "Notifications", "", l))
}
