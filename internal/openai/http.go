// Package openai is the OpenAI-compatible face (/v1): the same domain
// services as /api, in OpenAI's request and response shapes, with BrightRun
// API tokens as the bearer. Errors take OpenAI's shape in httpx.
package openai

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
)

// Handlers are the /v1 models and chat routes.
type Handlers struct {
	Inference   *inference.Service
	Checkpoints CheckpointResolver // fine-tuning checkpoints as model ids (nil: none)
	Store       store.Store
	Errors      *httpx.Errors
	Now         func() time.Time
}

// CheckpointResolver resolves a user's fine-tuning checkpoint (job row id
// and step) to a chat target and the checkpoint's time (*FineTuning).
type CheckpointResolver interface {
	CheckpointTarget(ctx context.Context, userID, ftID string, step int) (inference.Target, time.Time, error)
}

// Mount registers the models and chat routes (the fine-tuning routes have
// their own registration).
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /v1/models", h.listModels)
	m.API("GET /v1/models/{id...}", h.getModel)
	m.API("POST /v1/chat/completions", h.chat)
}
