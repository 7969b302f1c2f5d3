package launchers

import (
	"net/http"
	"time"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
)

// Handlers are the launch routes: a user sees the launches of their jobs.
type Handlers struct {
	Store store.Store
	Now   func() time.Time
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/launches", h.list)
}

// View is one launch as the API shows it.
type View struct {
	store.Launch
	// WaitSeconds is the launch wait: from the launch to its agent's claim
	// (or until now, or until it ended, when it has not claimed). It is
	// never billed: billing starts at the claim.
	WaitSeconds float64 `json:"wait_seconds"`
	Billed      bool    `json:"wait_billed"`
}

// NewView computes a launch's wait at now.
func NewView(l store.Launch, now time.Time) View {
	end := now
	switch {
	case l.ClaimedAt != nil:
		end = *l.ClaimedAt
	case l.EndedAt != nil:
		end = *l.EndedAt
	}
	return View{Launch: l, WaitSeconds: max(0, end.Sub(l.CreatedAt).Round(time.Second).Seconds())}
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	jobID := r.URL.Query().Get("job_id") // CleanInput already refused malformed query strings
	if jobID != "" {
		if _, err := h.Store.JobGet(r.Context(), auth.UserID(r), jobID); err != nil {
			return err // another user's job is a 404, like any missing one
		}
	}
	list, err := h.Store.LaunchList(r.Context(), store.LaunchListParams{UserID: auth.UserID(r), JobID: jobID, Limit: 100})
	if err != nil {
		return err
	}
	now := h.Now().UTC()
	out := make([]View, 0, len(list))
	for _, l := range list {
		out = append(out, NewView(l, now))
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"launches": out})
}
