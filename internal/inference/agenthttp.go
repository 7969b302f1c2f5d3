package inference

import (
	"net/http"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
)

// AgentHandlers are the agent protocol's inference calls (agent token auth,
// not user routes).
type AgentHandlers struct {
	Svc    *Service
	Errors *httpx.Errors
}

const maxStreamBody = 1 << 20

// Mount registers the routes.
func (h *AgentHandlers) Mount(m *server.Mux) {
	m.Handle("POST /api/agent/inference/claim", h.Errors.H(h.claim))
	m.Handle("POST /api/agent/inference/{id}/stream", h.Errors.H(h.stream))
}

func (h *AgentHandlers) agent(r *http.Request) (store.Agent, error) {
	return auth.Agent(r, h.Svc.Store)
}

func (h *AgentHandlers) claim(w http.ResponseWriter, r *http.Request) error {
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
	return httpx.OK(w, http.StatusOK, ClaimAnswer{Request: work})
}

// ClaimAnswer is the claim's answer: a request, or null after the wait.
type ClaimAnswer struct {
	Request *Work `json:"request"`
}

func (h *AgentHandlers) stream(w http.ResponseWriter, r *http.Request) error {
	a, err := h.agent(r)
	if err != nil {
		return err
	}
	var p StreamPost
	if err := httpx.DecodeJSONLoose(w, r, &p, maxStreamBody); err != nil {
		return err
	}
	ans, err := h.Svc.Post(a, r.PathValue("id"), p)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, ans)
}
