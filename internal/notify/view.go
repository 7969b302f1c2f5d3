package notify

import (
	"net/http"

	"github.com/brightrun/brightrun/internal/ui"
)

// page is the notifications page: the newest 100.
func (h *Handlers) page(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r, MaxLimit)
	if err != nil {
		return err
	}
	l, err := h.Svc.List(r.Context(), p)
	if err != nil {
		return err
	}
	return h.UI.Render(w, http.StatusOK, "notifications", ui.PageFor(r, "Notifications", "", l))
}
