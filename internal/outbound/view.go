package outbound

import (
	"net/http"
	"time"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// pageData is what the notification settings page shows.
type pageData struct {
	S           Settings
	Deliveries  []store.Delivery
	Backoff     []time.Duration
	MaxAttempts int
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request) error {
	s, err := h.Svc.Settings(r.Context(), auth.UserID(r))
	if err != nil {
		return err
	}
	l, err := h.log(r)
	if err != nil {
		return err
	}
	p := ui.PageFor(r, "Notification settings", "settings", pageData{S: s, Deliveries: l, Backoff: Backoff, MaxAttempts: MaxAttempts})
	p.Page = "settings-notifications"
	return h.UI.Render(w, http.StatusOK, "settings_notifications", p)
}
