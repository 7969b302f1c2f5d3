package training

import (
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// Handlers are the training routes.
type Handlers struct {
	Svc *Service
	UI  *ui.Renderer
}

// Mount registers the routes.
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /api/catalog", h.catalog)
	m.API("POST /api/jobs/estimate", h.estimate)
	m.API("POST /api/jobs", h.create)
	m.API("GET /api/jobs", h.list)
	m.API("GET /api/jobs/{id}", h.get)
	m.API("POST /api/jobs/{id}/cancel", h.cancel)
	m.API("POST /api/jobs/{id}/retry", h.retry)
	m.API("GET /api/settings/budget", h.getBudget)
	m.API("PUT /api/settings/budget", h.putBudget)

	m.Page("GET /training/configure", h.configurePage)
	m.Page("GET /training/jobs", h.jobsPage)
	m.Page("GET /training/jobs/{id}", h.jobPage)
	m.Page("POST /training/jobs/{id}/cancel", h.cancelForm)
	m.Page("POST /training/jobs/{id}/retry", h.retryForm)
}

func uid(r *http.Request) string { return auth.UserID(r) }

func (h *Handlers) catalog(w http.ResponseWriter, r *http.Request) error {
	c := h.Svc.Catalog
	return httpx.OK(w, http.StatusOK, map[string]any{"presets": c.Presets, "base_models": c.BaseModels, "gpus": c.GPUs})
}

func (h *Handlers) estimate(w http.ResponseWriter, r *http.Request) error {
	var req Request
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	est, err := h.Svc.Estimate(r.Context(), uid(r), req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, est)
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	var req Request
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	res, err := h.Svc.Create(r.Context(), uid(r), req)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, res)
}

// JobList is the list answer.
type JobList struct {
	Jobs       []store.Job      `json:"jobs"`
	Total      int              `json:"total"`
	Page       int              `json:"page"`
	Limit      int              `json:"limit"`
	TotalPages int              `json:"totalPages"`
	Status     string           `json:"status,omitempty"`
	Summary    store.JobSummary `json:"summary"`
}

var jobStatuses = []string{store.JobQueued, store.JobInitializing, store.JobRunning, store.JobPaused, store.JobCompleted, store.JobFailed, store.JobCancelled}

func (h *Handlers) jobList(r *http.Request, def int) (JobList, error) {
	q := r.URL.Query()
	f := apperr.FieldErrors{}
	p := store.JobListParams{UserID: uid(r), Status: q.Get("status")}
	p.Page, p.Limit = httpx.Paging(q, def, f)
	if p.Status != "" && !slices.Contains(jobStatuses, p.Status) {
		f.Add("status", "use one of queued, initializing, running, completed, failed, cancelled")
	}
	if err := f.Err(); err != nil {
		return JobList{}, err
	}
	jobs, total, err := h.Svc.Store.JobList(r.Context(), p)
	if err != nil {
		return JobList{}, err
	}
	sum, err := h.Svc.Store.JobSummary(r.Context(), p.UserID, monthStart(h.Svc.Now()))
	if err != nil {
		return JobList{}, err
	}
	if jobs == nil {
		jobs = []store.Job{}
	}
	return JobList{Jobs: jobs, Total: total, Page: p.Page, Limit: p.Limit, TotalPages: httpx.TotalPages(total, p.Limit), Status: p.Status, Summary: sum}, nil
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	l, err := h.jobList(r, 20)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, l)
}

// JobDetail is GET /api/jobs/{id}: the job, its metric points after
// since_step (incremental polling), its cost records and recent events.
type JobDetail struct {
	Job         store.Job           `json:"job"`
	Metrics     []store.MetricPoint `json:"metrics"`
	CostRecords []store.CostRecord  `json:"cost_records"`
	Events      []store.JobEvent    `json:"events"`
	Guidance    string              `json:"guidance,omitempty"`
	Queue       *QueueInfo          `json:"queue,omitempty"` // queued jobs: position, whether an agent can run it
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	since := -1
	if v := r.URL.Query().Get("since_step"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			return apperr.Validation("validation failed", map[string]string{"since_step": "use a step number (or -1 for all points)"})
		}
		since = n
	}
	d, err := h.detail(r, since)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, d)
}

func (h *Handlers) detail(r *http.Request, since int) (JobDetail, error) {
	ctx, id := r.Context(), r.PathValue("id")
	j, err := h.Svc.Store.JobGet(ctx, uid(r), id)
	if err != nil {
		return JobDetail{}, err
	}
	d := JobDetail{Job: j}
	if d.Metrics, err = h.Svc.Store.MetricsList(ctx, uid(r), id, since, 5000); err != nil {
		return d, err
	}
	if d.CostRecords, err = h.Svc.Store.CostRecordsForJob(ctx, uid(r), id); err != nil {
		return d, err
	}
	if d.Events, err = h.Svc.Store.JobEventsList(ctx, uid(r), id, 200); err != nil {
		return d, err
	}
	d.Queue, err = h.Svc.Queue(ctx, j)
	return d, err
}

func (h *Handlers) cancel(w http.ResponseWriter, r *http.Request) error {
	j, err := h.Svc.Cancel(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"job": j})
}

func (h *Handlers) getBudget(w http.ResponseWriter, r *http.Request) error {
	b, err := h.Svc.budget(r.Context(), uid(r), 0)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, b)
}

type budgetReq struct {
	MonthlyBudget *float64 `json:"monthly_budget"`
	HardStop      *bool    `json:"hard_stop"`
}

func (h *Handlers) putBudget(w http.ResponseWriter, r *http.Request) error {
	var req budgetReq
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if req.MonthlyBudget != nil && (*req.MonthlyBudget < 0 || *req.MonthlyBudget > 1e7 || math.IsNaN(*req.MonthlyBudget)) {
		return apperr.Validation("validation failed", map[string]string{"monthly_budget": "use an amount from 0 to 10,000,000 dollars, or null for no budget"})
	}
	st := store.UserSettings{UserID: uid(r), MonthlyBudget: req.MonthlyBudget, BudgetHardStop: true}
	if req.HardStop != nil {
		st.BudgetHardStop = *req.HardStop
	}
	st.At = h.Svc.Now().UTC()
	if err := h.Svc.Store.UserSettingsPut(r.Context(), st); err != nil {
		return err
	}
	return h.getBudget(w, r)
}

type configureData struct {
	Dataset  *store.Dataset
	Datasets []store.Dataset
	From     string // a job whose settings prefill the form ("Run again")
}

func (h *Handlers) configurePage(w http.ResponseWriter, r *http.Request) error {
	data := configureData{}
	if id := r.URL.Query().Get("datasetId"); id != "" {
		d, err := h.Svc.Store.DatasetGet(r.Context(), uid(r), id)
		if err != nil {
			return err
		}
		data.Dataset = &d
		if from := r.URL.Query().Get("from"); from != "" {
			j, err := h.Svc.Store.JobGet(r.Context(), uid(r), from)
			if err != nil {
				return err
			}
			data.From = j.ID
		}
	} else {
		list, _, err := h.Svc.Store.DatasetList(r.Context(), store.DatasetListParams{UserID: uid(r), Status: store.DatasetReady, Page: 1, Limit: 100})
		if err != nil {
			return err
		}
		data.Datasets = list
	}
	p := ui.PageFor(r, "Configure training", "training", data)
	p.Page = "training-configure"
	return h.UI.Render(w, http.StatusOK, "training_configure", p)
}

func (h *Handlers) jobsPage(w http.ResponseWriter, r *http.Request) error {
	l, err := h.jobList(r, 25)
	if err != nil {
		return err
	}
	return h.UI.Render(w, http.StatusOK, "training_jobs", ui.PageFor(r, "Training jobs", "training", l))
}

func (h *Handlers) jobPage(w http.ResponseWriter, r *http.Request) error {
	j, err := h.Svc.Store.JobGet(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	v := newJobView(j)
	if v.Queue, err = h.Svc.Queue(r.Context(), j); err != nil {
		return err
	}
	p := ui.PageFor(r, "Training job", "training", v)
	p.Page = "training-job"
	return h.UI.Render(w, http.StatusOK, "training_job", p)
}

func (h *Handlers) cancelForm(w http.ResponseWriter, r *http.Request) error {
	j, err := h.Svc.Cancel(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/training/jobs/"+j.ID+"?flash="+url.QueryEscape("Cancellation requested."), http.StatusSeeOther)
	return nil
}

func (h *Handlers) retry(w http.ResponseWriter, r *http.Request) error {
	res, err := h.Svc.Retry(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, res)
}

func (h *Handlers) retryForm(w http.ResponseWriter, r *http.Request) error {
	res, err := h.Svc.Retry(r.Context(), uid(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/training/jobs/"+res.Job.ID+"?flash="+url.QueryEscape("A new job with the same configuration was queued."), http.StatusSeeOther)
	return nil
}
