package costs

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the cost routes.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/costs", h.report)
	m.API("GET /api/costs/export.csv", h.csv)
	m.Page("GET /costs", h.page)
}

func (h *Handlers) load(r *http.Request) (Report, error) {
	q := r.URL.Query()
	from, to, err := h.Svc.Range(q.Get("period"), q.Get("start"), q.Get("end"))
	if err != nil {
		return Report{}, err
	}
	return h.Svc.Report(r.Context(), auth.UserID(r), from, to)
}

func (h *Handlers) report(w http.ResponseWriter, r *http.Request) error {
	rep, err := h.load(r)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, rep)
}

func (h *Handlers) csv(w http.ResponseWriter, r *http.Request) error {
	rep, err := h.load(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="brightrun-costs-%s-to-%s.csv"`, rep.Start, rep.End))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"recorded_at", "billing_period", "cost_type", "amount_usd", "job_id", "details"})
	for _, c := range rep.Records {
		job := ""
		if c.JobID != nil {
			job = *c.JobID
		}
		details := []byte(nil) // none: an empty cell
		if c.Details.Type() != "" {
			if details, err = json.Marshal(c.Details); err != nil {
				return err
			}
		}
		_ = cw.Write([]string{c.RecordedAt.Format("2006-01-02T15:04:05Z"), c.BillingPeriod, c.CostType, strconv.FormatFloat(c.Amount, 'f', 4, 64), job, string(details)})
	}
	cw.Flush()
	return cw.Error()
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request) error {
	rep, err := h.load(r)
	if err != nil {
		return err
	}
	max := 0.0
	for _, d := range rep.Daily {
		if d.Total > max {
			max = d.Total
		}
	}
	p := ui.PageFor(r, "Costs", "costs", map[string]any{"R": rep, "Max": max, "Period": r.URL.Query().Get("period")})
	p.Page = "costs"
	return h.UI.Render(w, http.StatusOK, "costs", p)
}
