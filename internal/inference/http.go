package inference

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/server"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

// PlaygroundHandlers are the playground's page and API (session cookie and
// CSRF, or an API token).
type PlaygroundHandlers struct {
	Svc    *Service
	Errors *httpx.Errors
	UI     *ui.Renderer
}

// Mount registers the routes.
func (h *PlaygroundHandlers) Mount(m *server.Mux) {
	m.API("GET /api/models/{id}/playground", h.playground)
	m.API("POST /api/models/{id}/playground/chat", h.chat)
	m.API("POST /api/models/{id}/preferences", h.savePreference)
	m.API("GET /api/models/{id}/preferences", h.listPreferences)
	m.API("GET /api/models/{id}/preferences.jsonl", h.exportPreferences)
	m.Page("GET /models/{id}/playground", h.page)
}

func (h *PlaygroundHandlers) model(r *http.Request) (store.Model, error) {
	return h.Svc.Store.ModelGet(r.Context(), auth.UserID(r), r.PathValue("id"))
}

func (h *PlaygroundHandlers) playground(w http.ResponseWriter, r *http.Request) error {
	m, err := h.model(r)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"playground": PlaygroundFor(m), "online": h.Svc.Broker.Online(m.BaseModel),
		"model_id": AdapterModelID(m), "base_model": m.BaseModel})
}

// chatRequest is the playground's chat body: one side of the comparison.
type chatRequest struct {
	Side        string    `json:"side"` // base | adapter
	Messages    []Message `json:"messages"`
	MaxTokens   int       `json:"max_tokens"`
	Temperature *float64  `json:"temperature"`
	TopP        *float64  `json:"top_p"`
	Seed        *int64    `json:"seed"`
}

// TextEvent, DoneEvent are the playground stream's events.
type TextEvent struct {
	Text string `json:"text"`
}

// DoneEvent ends a playground stream.
type DoneEvent struct {
	FinishReason string `json:"finish_reason"`
	Usage        Usage  `json:"usage"`
}

// chat streams one side's answer as server-sent events: "text" events, then
// "done" (or "error"). Closing the connection (the stop button, a closed
// tab) cancels the generation on the agent.
func (h *PlaygroundHandlers) chat(w http.ResponseWriter, r *http.Request) error {
	var req chatRequest
	if err := httpx.DecodeJSON(w, r, &req, 4<<20); err != nil {
		return err
	}
	if req.Side != "base" && req.Side != "adapter" {
		return apperr.Validation("validation failed", map[string]string{"side": "use base or adapter"})
	}
	m, err := h.model(r)
	if err != nil {
		return err
	}
	t := Target{BaseModel: m.BaseModel}
	if req.Side == "adapter" {
		t.Model = &m
	}
	p := Params{MaxTokens: req.MaxTokens, Temperature: 0.7, TopP: 1, Seed: req.Seed}
	if req.Temperature != nil {
		p.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		p.TopP = *req.TopP
	}
	call, err := h.Svc.Start(r.Context(), ChatParams{UserID: auth.UserID(r), Target: t, Messages: req.Messages, Params: p, Source: SourcePlayground})
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	started := false
	send := func(event string, v any) {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		b, _ := json.Marshal(v)
		_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		_ = rc.Flush()
	}
	for {
		text, res, err := call.Next(r.Context())
		if err != nil {
			return nil // the browser went away; the call is cancelled
		}
		if text != "" {
			send("text", TextEvent{Text: text})
			continue
		}
		if res.Err != nil {
			if !started {
				return res.Err
			}
			send("error", h.Errors.StreamError(r, res.Err))
			return nil
		}
		send("done", DoneEvent{FinishReason: res.FinishReason, Usage: res.Usage})
		return nil
	}
}

type preferenceRequest struct {
	Messages  []Message `json:"messages"`
	LeftSide  string    `json:"left_side"`
	LeftText  string    `json:"left_text"`
	RightText string    `json:"right_text"`
	Choice    string    `json:"choice"`
}

func (h *PlaygroundHandlers) savePreference(w http.ResponseWriter, r *http.Request) error {
	var req preferenceRequest
	if err := httpx.DecodeJSON(w, r, &req, 4<<20); err != nil {
		return err
	}
	m, err := h.model(r)
	if err != nil {
		return err
	}
	p, err := h.Svc.SavePreference(r.Context(), PreferenceParams{UserID: auth.UserID(r), Model: m, Messages: req.Messages,
		LeftSide: req.LeftSide, LeftText: req.LeftText, RightText: req.RightText, Choice: req.Choice})
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, map[string]any{"preference": ViewPreference(p)})
}

func (h *PlaygroundHandlers) preferences(r *http.Request) (store.Model, []store.Preference, error) {
	m, err := h.model(r)
	if err != nil {
		return m, nil, err
	}
	list, err := h.Svc.Store.PreferenceList(r.Context(), auth.UserID(r), m.ID)
	return m, list, err
}

func (h *PlaygroundHandlers) listPreferences(w http.ResponseWriter, r *http.Request) error {
	_, list, err := h.preferences(r)
	if err != nil {
		return err
	}
	views := make([]PreferenceView, 0, len(list))
	for _, p := range list {
		views = append(views, ViewPreference(p))
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"preferences": views})
}

// exportPreferences writes the votes as JSONL {"prompt","chosen","rejected"}.
func (h *PlaygroundHandlers) exportPreferences(w http.ResponseWriter, r *http.Request) error {
	m, list, err := h.preferences(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="preferences-%s.jsonl"`, m.ID))
	enc := json.NewEncoder(w)
	for _, p := range PreferencePairs(list) {
		if err := enc.Encode(p); err != nil {
			return nil
		}
	}
	return nil
}

func (h *PlaygroundHandlers) page(w http.ResponseWriter, r *http.Request) error {
	m, err := h.model(r)
	if err != nil {
		return err
	}
	pg := PlaygroundFor(m)
	p := ui.PageFor(r, m.Name+" · Playground", "models", map[string]any{"M": m, "P": pg, "Online": h.Svc.Broker.Online(m.BaseModel),
		"BaseName": h.Svc.DisplayName(m.BaseModel), "FTID": AdapterModelID(m)})
	p.Page = "model-playground"
	return h.UI.Render(w, http.StatusOK, "model_playground", p)
}
