package models

import (
	"net/http"
	"strings"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

func (h *Handlers) listPage(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r, 24)
	if err != nil {
		return err
	}
	l, err := h.Svc.List(r.Context(), p)
	if err != nil {
		return err
	}
	return h.UI.Render(w, http.StatusOK, "models", ui.PageFor(r, "Models", "models", l))
}

// detailData is what the model page shows.
type detailData struct {
	M     View
	Rule  string
	Job   store.Job
	Hyper []Setting
	FTID  string // the /v1 model id of the adapter
	V1    string // the /v1 base URL
}

func (h *Handlers) detailPage(w http.ResponseWriter, r *http.Request) error {
	d, err := h.Svc.Detail(r.Context(), auth.UserID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	p := ui.PageFor(r, d.Model.Name, "models", detailData{M: d.Model, Rule: RatingRule, Job: d.Job, Hyper: d.Hyper,
		FTID: inference.AdapterModelID(d.Model.Model), V1: strings.TrimRight(h.PublicURL, "/") + "/v1"})
	p.Page = "model-detail"
	return h.UI.Render(w, http.StatusOK, "model_detail", p)
}
