package openai

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

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
	for _, alias := range slices.Sorted(maps.Keys(h.Inference.Catalog.OpenAI.ModelAliases)) {
		out.Data = append(out.Data, Model{ID: alias, Object: "model", Created: baseCreated, OwnedBy: "brightrun"})
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
	if _, ok := h.baseTarget(id); ok { // an alias keeps the name it was asked by
		httpx.JSON(w, http.StatusOK, Model{ID: id, Object: "model", Created: baseCreated, OwnedBy: "brightrun"})
		return nil
	}
	t, created, err := h.resolveUser(r.Context(), auth.UserID(r), id)
	if err != nil {
		return err
	}
	if _, _, ckpt := checkpointRef(id); t.Model != nil && !ckpt {
		httpx.JSON(w, http.StatusOK, adapterModel(*t.Model))
		return nil
	}
	// A checkpoint keeps the id it was asked by (the final checkpoint's
	// ftckpt- id too).
	httpx.JSON(w, http.StatusOK, Model{ID: id, Object: "model", Created: created.Unix(), OwnedBy: "user"})
	return nil
}

// checkpointRef parses a checkpoint's ftckpt- id or ft:…:ckpt-step-N model id.
func checkpointRef(id string) (ftID string, step int, ok bool) {
	if ftID, step, ok = ParseCheckpointID(id); ok {
		return ftID, step, ok
	}
	return ParseCheckpointModel(id)
}

// baseTarget resolves a catalog base model by its id or by an OpenAI model
// name the operator mapped onto it (the catalog's openai.model_aliases, as
// for fine-tuning jobs).
func (h *Handlers) baseTarget(id string) (inference.Target, bool) {
	if t, ok := h.Inference.BaseTarget(id); ok {
		return t, true
	}
	if base, ok := h.Inference.Catalog.OpenAI.ModelAliases[id]; ok {
		return h.Inference.BaseTarget(base)
	}
	return inference.Target{}, false
}

// resolve maps a /v1 model id to a target: a catalog base model (or an
// OpenAI model name the catalog aliases to one), or one of the caller's
// models or checkpoints (see resolveUser).
func (h *Handlers) resolve(ctx context.Context, userID, id string) (inference.Target, error) {
	if t, ok := h.baseTarget(id); ok {
		return t, nil
	}
	t, _, err := h.resolveUser(ctx, userID, id)
	return t, err
}

// resolveUser maps the caller's ft: model id, ftckpt- checkpoint id or
// ft:…:ckpt-step-N checkpoint model id to a target and its creation time;
// anyone else's (and anything unknown) is model_not_found.
func (h *Handlers) resolveUser(ctx context.Context, userID, id string) (inference.Target, time.Time, error) {
	ftID, step, ok := checkpointRef(id)
	var (
		t       inference.Target
		created time.Time
		err     error
	)
	switch mid, isModel := inference.ParseAdapterModelID(id); {
	case ok && h.Checkpoints != nil:
		t, created, err = h.Checkpoints.CheckpointTarget(ctx, userID, ftID, step)
	case isModel && !ok:
		t, err = h.Inference.AdapterTarget(ctx, userID, mid)
		if t.Model != nil {
			created = t.Model.CreatedAt
		}
	default:
		return t, created, notFoundModel(id)
	}
	if apperr.Is(err, apperr.KindNotFound) {
		return inference.Target{}, created, notFoundModel(id)
	}
	return t, created, err
}
