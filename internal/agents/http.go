package agents

import (
	"net/http"
	"strconv"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the agents routes.
type Handlers struct {
	Svc       *Service
	Catalog   *catalog.Catalog
	UI        *ui.Renderer
	PublicURL string // for the help page's command
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/agents", h.list)
	m.API("POST /api/agents", h.create)
	m.API("DELETE /api/agents/{id}", h.revoke)
	m.API("GET /api/agents/capability", h.capability)
	m.Page("GET /agents", h.page)
	m.Page("GET /help/agents", h.help)
}

func uid(r *http.Request) string { return auth.UserID(r) }

// ListResponse is GET /api/agents.
type ListResponse struct {
	Agents []Agent `json:"agents"`
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	all := false
	if v := r.URL.Query().Get("all"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apperr.Validation("validation failed", map[string]string{"all": "use true or false"})
		}
		all = b
	}
	list, err := h.Svc.List(r.Context(), uid(r), all)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, ListResponse{Agents: list})
}

// CreateRequest is POST /api/agents.
type CreateRequest struct {
	Name string `json:"name"`
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	var req CreateRequest
	if err := httpx.DecodeJSON(w, r, &req, 4<<10); err != nil {
		return err
	}
	c, err := h.Svc.Create(r.Context(), uid(r), req.Name)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, c)
}

func (h *Handlers) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := h.Svc.Revoke(r.Context(), uid(r), r.PathValue("id")); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"revoked": true})
}

func (h *Handlers) capability(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := apperr.FieldErrors{}
	gpu, ok := h.Catalog.GPU(q.Get("gpu_type"))
	if !ok {
		f.Add("gpu_type", "use a gpu_type or id from GET /api/catalog")
	}
	n := 1
	if v := q.Get("num_gpus"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 64 {
			f.Add("num_gpus", "use a whole number from 1 to 64")
		}
	}
	if err := f.Err(); err != nil {
		return err
	}
	c, err := h.Svc.Capable(r.Context(), gpu.GPUType, n)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, struct {
		Capability
		Message string `json:"message"`
	}{c, c.Message()})
}

// pageData is the agents page's data: operators get the list; everyone
// gets whether each catalog GPU type has an online agent.
type pageData struct {
	Operator bool
	Agents   []Agent
	GPUs     []gpuRow
}

type gpuRow struct {
	Name    string
	Capable bool
	Message string
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request) error {
	op, err := h.Svc.IsOperator(r.Context(), uid(r))
	if err != nil {
		return err
	}
	d := pageData{Operator: op}
	if op {
		if d.Agents, err = h.Svc.List(r.Context(), uid(r), r.URL.Query().Get("all") == "true"); err != nil {
			return err
		}
	}
	for _, g := range h.Catalog.GPUs {
		c, err := h.Svc.Capable(r.Context(), g.GPUType, 1)
		if err != nil {
			return err
		}
		msg := "no agent connected; jobs wait in the queue"
		if c.Capable {
			msg = "can run now (an agent is online)"
		}
		d.GPUs = append(d.GPUs, gpuRow{Name: g.DisplayName, Capable: c.Capable, Message: msg})
	}
	p := ui.PageFor(r, "Agents", "agents", d)
	p.Page = "agents"
	return h.UI.Render(w, http.StatusOK, "agents", p)
}

func (h *Handlers) help(w http.ResponseWriter, r *http.Request) error {
	return h.UI.Render(w, http.StatusOK, "help_agents", ui.PageFor(r, "Starting a trainer agent", "agents", h.PublicURL))
}
