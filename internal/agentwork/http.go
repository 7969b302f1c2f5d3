package agentwork

import (
	"net/http"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
)

// Handlers are the agent protocol's work calls (agent token auth, not user routes).
type Handlers struct {
	Svc    *Service
	Errors *httpx.Errors
}

const maxResultBody = 32 << 20 // a profile row is at most ~50 bytes of JSON

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.Handle("POST /api/agent/work/claim", h.Errors.H(h.claim))
	m.Handle("POST /api/agent/work/{id}/complete", h.Errors.H(h.complete))
	m.Handle("POST /api/agent/work/{id}/fail", h.Errors.H(h.fail))
	m.Handle("POST /api/agent/work/{id}/upload", h.Errors.H(h.upload))
}

func (h *Handlers) upload(w http.ResponseWriter, r *http.Request) error {
	a, err := h.agent(r)
	if err != nil {
		return err
	}
	var req UploadRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	u, err := h.Svc.Upload(r.Context(), a, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, UploadAnswer{Upload: u})
}

func (h *Handlers) agent(r *http.Request) (store.Agent, error) {
	return auth.Agent(r, h.Svc.Store)
}

func (h *Handlers) claim(w http.ResponseWriter, r *http.Request) error {
	a, err := h.agent(r)
	if err != nil {
		return err
	}
	var req ClaimRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	work, err := h.Svc.Claim(r.Context(), a, req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, ClaimAnswer{Work: work})
}

func (h *Handlers) complete(w http.ResponseWriter, r *http.Request) error {
	a, err := h.agent(r)
	if err != nil {
		return err
	}
	var req CompleteRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, maxResultBody); err != nil {
		return err
	}
	if err := h.Svc.Complete(r.Context(), a, r.PathValue("id"), req); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, DoneAnswer{Status: store.WorkCompleted})
}

func (h *Handlers) fail(w http.ResponseWriter, r *http.Request) error {
	a, err := h.agent(r)
	if err != nil {
		return err
	}
	var req FailRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	if err := h.Svc.Fail(r.Context(), a, r.PathValue("id"), req); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, DoneAnswer{Status: store.WorkFailed})
}
