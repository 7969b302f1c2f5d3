package agentapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
)

// Handlers are the agent protocol routes (not user routes: agents
// authenticate with agent and job tokens).
type Handlers struct {
	Svc    *Service
	Errors *httpx.Errors
}

const maxAgentBody = 8 << 20

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.Handle("POST /api/agent/claim", h.Errors.H(h.claim))
	for _, r := range []struct {
		path string
		fn   func(http.ResponseWriter, *http.Request, store.ExecJob) error
	}{
		{"heartbeat", h.heartbeat}, {"metrics", h.metrics}, {"events", h.events}, {"uploads", h.uploads},
		{"checkpoint", h.checkpoint}, {"complete", h.complete}, {"fail", h.fail}, {"cancelled", h.cancelled},
	} {
		fn := r.fn
		m.Handle("POST /api/agent/jobs/{id}/"+r.path, h.Errors.H(func(w http.ResponseWriter, req *http.Request) error {
			j, err := h.Svc.Authorize(req.Context(), req.PathValue("id"), bearer(req))
			if err != nil {
				return err
			}
			return fn(w, req, j)
		}))
	}
}

func bearer(r *http.Request) string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (h *Handlers) claim(w http.ResponseWriter, r *http.Request) error {
	agent, err := auth.Agent(r, h.Svc.Store)
	if err != nil {
		return err
	}
	var req ClaimRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	a, err := h.Svc.Claim(r.Context(), agent, req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, ClaimAnswer{Job: a})
}

func (h *Handlers) heartbeat(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req HeartbeatRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	out, err := h.Svc.Heartbeat(r.Context(), j, req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, out)
}

func (h *Handlers) metrics(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req MetricsRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, maxAgentBody); err != nil {
		return err
	}
	n, err := h.Svc.Metrics(r.Context(), j, req.Points)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]int{"stored": n})
}

func (h *Handlers) events(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req EventsRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, maxAgentBody); err != nil {
		return err
	}
	evs := make([]store.JobEvent, 0, len(req.Events))
	for _, e := range req.Events {
		at, _ := time.Parse(time.RFC3339Nano, e.Timestamp) // unparseable: zero, the service stamps it
		evs = append(evs, store.JobEvent{Level: e.Level, Stage: e.Stage, Message: e.Message, CreatedAt: at})
	}
	if err := h.Svc.Events(r.Context(), j, evs); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]int{"stored": len(evs)})
}

func (h *Handlers) uploads(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req UploadRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	ups, err := h.Svc.Uploads(r.Context(), j, req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"uploads": ups})
}

func (h *Handlers) checkpoint(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req CheckpointRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	if err := h.Svc.SetCheckpoint(r.Context(), j, req); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]int{"step": req.Step})
}

func (h *Handlers) complete(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req CompleteRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, maxAgentBody); err != nil {
		return err
	}
	done, err := h.Svc.Complete(r.Context(), j, req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"status": done.Status, "final_cost": done.FinalCost, "artifact_id": done.ArtifactID})
}

func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req FailRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, maxAgentBody); err != nil {
		return err
	}
	st, err := h.Svc.Fail(r.Context(), j, req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]string{"status": st})
}

func (h *Handlers) cancelled(w http.ResponseWriter, r *http.Request, j store.ExecJob) error {
	var req CancelledRequest
	if err := httpx.DecodeJSONLoose(w, r, &req, 0); err != nil {
		return err
	}
	if err := h.Svc.Cancelled(r.Context(), j, req.Step); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]string{"status": store.JobCancelled})
}
