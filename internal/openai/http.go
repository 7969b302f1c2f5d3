// Package openai is the OpenAI-compatible face (/v1): the same domain
// services as /api, in OpenAI's request and response shapes, with BrightRun
// API tokens as the bearer. Errors take OpenAI's shape in httpx.
package openai

import (
	"time"

	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
)

// Handlers are the /v1 models and chat routes.
type Handlers struct {
	Inference *inference.Service
	Store     store.Store
	Errors    *httpx.Errors
	Now       func() time.Time
}

// Mount registers the models and chat routes (the fine-tuning routes have
// their own registration).
func (h *Handlers) Mount(m *server.Mux) {
	m.API("GET /v1/models", h.listModels)
	m.API("GET /v1/models/{id...}", h.getModel)
	m.API("POST /v1/chat/completions", h.chat)
}
