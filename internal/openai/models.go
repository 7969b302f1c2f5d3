package openai

import (
	"context"
	"net/http"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store"
)

// Model is OpenAI's model object.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is OpenAI's list object.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

const baseCreated = 1700000000 // catalog entries have no creation time; a fixed one keeps ids stable

func notFoundModel(id string) error {
	return (&apperr.Error{Kind: apperr.KindNotFound,
		Message: "The model `" + id + "` does not exist or you do not have access to it (GET /v1/models lists yours)."}).WithCode("model_not_found")
}

func (h *Handlers) listModels(w http.ResponseWriter, r *http.Request) error {
	out := ModelList{Object: "list", Data: []Model{}}
	for _, m := range h.Inference.Catalog.BaseModels {
		out.Data = append(out.Data, Model{ID: m.ID, Object: "model", Created: baseCreated, OwnedBy: "brightrun"})
	}
	models, err := h.userModels(r.Context(), auth.UserID(r))
	if err != nil {
		return err
	}
	for _, m := range models {
		out.Data = append(out.Data, adapterModel(m))
	}
	httpx.JSON(w, http.StatusOK, out)
	return nil
}

func adapterModel(m store.Model) Model {
	return Model{ID: inference.AdapterModelID(m), Object: "model", Created: m.CreatedAt.Unix(), OwnedBy: "user"}
}

// userModels lists every model of the user (all pages).
func (h *Handlers) userModels(ctx context.Context, userID string) ([]store.Model, error) {
	var all []store.Model
	for page := 1; ; page++ {
		list, total, err := h.Store.ModelList(ctx, store.ModelListParams{UserID: userID, Sort: "newest", Page: page, Limit: 100})
		if err != nil {
			return nil, err
		}
		all = append(all, list...)
		if len(list) == 0 || len(all) >= total {
			return all, nil
		}
	}
}

func (h *Handlers) getModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if t, ok := h.Inference.BaseTarget(id); ok {
		httpx.JSON(w, http.StatusOK, Model{ID: t.BaseModel, Object: "model", Created: baseCreated, OwnedBy: "brightrun"})
		return nil
	}
	t, err := h.resolve(r.Context(), auth.UserID(r), id)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, adapterModel(*t.Model))
	return nil
}

// resolve maps a /v1 model id to a target: a catalog base model, or the
// caller's adapter by its ft: id (anyone else's is not found).
func (h *Handlers) resolve(ctx context.Context, userID, id string) (inference.Target, error) {
	if t, ok := h.Inference.BaseTarget(id); ok {
		return t, nil
	}
	mid, ok := inference.ParseAdapterModelID(id)
	if !ok {
		return inference.Target{}, notFoundModel(id)
	}
	t, err := h.Inference.AdapterTarget(ctx, userID, mid)
	if apperr.Is(err, apperr.KindNotFound) {
		return inference.Target{}, notFoundModel(id)
	}
	return t, err
}
