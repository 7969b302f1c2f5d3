package server

import (
	"net/http"
	"net/url"
	"time"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

func (d *Deps) pageRoutes(m *Mux) {
	m.Page("GET /{$}", d.dashboard)
	m.Page("GET /settings", d.settings)
	m.Page("POST /settings/tokens", d.settingsTokenCreate)
	m.Page("POST /settings/tokens/{id}/revoke", d.settingsTokenRevoke)
}

// DashboardData feeds the dashboard; domains fill it through DashboardStats.
type DashboardData struct {
	Datasets, ReadyDatasets, ActiveJobs, Models int
	SpentThisMonth                              float64
	Active                                      []store.Job
}

func (d *Deps) dashboard(w http.ResponseWriter, r *http.Request) error {
	var data DashboardData
	p, _ := auth.PrincipalFrom(r.Context())
	var err error
	if _, data.Datasets, err = d.Store.DatasetList(r.Context(), store.DatasetListParams{UserID: p.UserID, Page: 1, Limit: 1}); err != nil {
		return err
	}
	if _, data.ReadyDatasets, err = d.Store.DatasetList(r.Context(), store.DatasetListParams{UserID: p.UserID, Status: store.DatasetReady, Page: 1, Limit: 1}); err != nil {
		return err
	}
	now := d.Now().UTC()
	sum, err := d.Store.JobSummary(r.Context(), p.UserID, time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	data.ActiveJobs, data.Models, data.SpentThisMonth = sum.Active, sum.Completed, sum.SpentThisMonth
	for _, st := range store.JobActive {
		jobs, _, err := d.Store.JobList(r.Context(), store.JobListParams{UserID: p.UserID, Status: st, Page: 1, Limit: 10})
		if err != nil {
			return err
		}
		data.Active = append(data.Active, jobs...)
	}
	return d.UI.Render(w, http.StatusOK, "dashboard", ui.PageFor(r, "Dashboard", "dashboard", data))
}

type settingsData struct {
	Tokens   []store.APIToken
	NewToken string
}

func (d *Deps) settingsPage(w http.ResponseWriter, r *http.Request, newToken string) error {
	p, _ := auth.PrincipalFrom(r.Context())
	list, err := d.Store.APITokenList(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	return d.UI.Render(w, http.StatusOK, "settings", ui.PageFor(r, "Settings", "settings", settingsData{Tokens: list, NewToken: newToken}))
}

func (d *Deps) settings(w http.ResponseWriter, r *http.Request) error {
	return d.settingsPage(w, r, "")
}

func (d *Deps) settingsTokenCreate(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	tok, _, err := auth.CreateToken(r.Context(), d.Store, p.UserID, r.PostFormValue("name"), nil, d.Now().UTC())
	if err != nil {
		return err
	}
	return d.settingsPage(w, r, tok)
}

func (d *Deps) settingsTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	if err := d.Store.APITokenRevoke(r.Context(), p.UserID, r.PathValue("id"), d.Now().UTC()); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings?flash="+url.QueryEscape("Token revoked."), http.StatusSeeOther)
	return nil
}
