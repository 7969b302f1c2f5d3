package outbound

import (
	"net/http"
	"strconv"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the outbound notification settings routes: parse, call the
// service, answer.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/settings/notifications", h.get)
	m.API("PUT /api/settings/notifications", h.put)
	m.API("POST /api/settings/notifications/rotate-secret", h.rotate)
	m.API("GET /api/settings/notifications/deliveries", h.deliveries)
	m.Page("GET /settings/notifications", h.page)
}

type settingsAnswer struct {
	Settings Settings `json:"settings"`
}

func (h *Handlers) answer(w http.ResponseWriter, s Settings, err error) error {
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, settingsAnswer{Settings: s})
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	s, err := h.Svc.Settings(r.Context(), auth.UserID(r))
	return h.answer(w, s, err)
}

func (h *Handlers) put(w http.ResponseWriter, r *http.Request) error {
	var req SettingsRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	var email string
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		email = p.Email
	}
	s, err := h.Svc.SaveSettings(r.Context(), auth.UserID(r), email, req)
	return h.answer(w, s, err)
}

func (h *Handlers) rotate(w http.ResponseWriter, r *http.Request) error {
	s, err := h.Svc.RotateSecret(r.Context(), auth.UserID(r))
	return h.answer(w, s, err)
}

// log reads ?limit= and lists the user's deliveries.
func (h *Handlers) log(r *http.Request) ([]store.Delivery, error) {
	limit := DefaultDeliveries
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = -1 // the service names the field
		}
		limit = n
	}
	return h.Svc.Deliveries(r.Context(), auth.UserID(r), limit)
}

type deliveriesAnswer struct {
	Deliveries []store.Delivery `json:"deliveries"`
}

func (h *Handlers) deliveries(w http.ResponseWriter, r *http.Request) error {
	l, err := h.log(r)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, deliveriesAnswer{Deliveries: l})
}
