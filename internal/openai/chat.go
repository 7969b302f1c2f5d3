package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/inference"
)

// chatRequest is the subset of OpenAI's chat completion request BrightRun
// serves; any other field is refused by name (strict decoding).
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Temperature         *float64       `json:"temperature"`
	TopP                *float64       `json:"top_p"`
	Stop                stopList       `json:"stop"`
	Seed                *int64         `json:"seed"`
	N                   *int           `json:"n"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	User                string         `json:"user"` // accepted and ignored, as a hint for abuse tracking
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string      `json:"role"`
	Content textContent `json:"content"`
	Name    string      `json:"name"`
}

// textContent is a message's content: a string or a list of text parts.
type textContent string

func (c *textContent) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = textContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return apperr.BadRequest("content must be a string or a list of text parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return apperr.BadRequest("content part type %q is not supported: only text", p.Type)
		}
		sb.WriteString(p.Text)
	}
	*c = textContent(sb.String())
	return nil
}

// stopList is stop: a string or a list of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return apperr.BadRequest("stop must be a string or a list of strings")
	}
	*s = many
	return nil
}

// params checks the request and converts it for the inference service.
func (req chatRequest) params() ([]inference.Message, inference.Params, error) {
	f := apperr.FieldErrors{}
	if strings.TrimSpace(req.Model) == "" {
		f.Add("model", "name a model from GET /v1/models")
	}
	if req.N != nil && *req.N != 1 {
		f.Add("n", "only n=1 is supported: send one request per completion")
	}
	if req.StreamOptions != nil && !req.Stream {
		f.Add("stream_options", "only allowed with stream: true")
	}
	p := inference.Params{Temperature: 1, TopP: 1, Seed: req.Seed, Stop: req.Stop}
	switch {
	case req.MaxCompletionTokens != nil:
		p.MaxTokens = *req.MaxCompletionTokens
		if req.MaxTokens != nil && *req.MaxTokens != *req.MaxCompletionTokens {
			f.Add("max_tokens", "send max_completion_tokens or max_tokens, not two different values")
		}
		if p.MaxTokens == 0 {
			f.Add("max_completion_tokens", "use 1 to 4096")
		}
	case req.MaxTokens != nil:
		p.MaxTokens = *req.MaxTokens
		if p.MaxTokens == 0 {
			f.Add("max_tokens", "use 1 to 4096")
		}
	}
	if req.Temperature != nil {
		p.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		p.TopP = *req.TopP
	}
	msgs := make([]inference.Message, 0, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" { // OpenAI's newer name for the system role
			role = "system"
		}
		if role == "tool" || role == "function" {
			f.Add(fmt.Sprintf("messages[%d].role", i), "tool messages are not supported: use system, user or assistant")
		}
		msgs = append(msgs, inference.Message{Role: role, Content: string(m.Content)})
	}
	if err := f.Err(); err != nil {
		return nil, p, err
	}
	if err := inference.Validate(msgs, &p); err != nil {
		return nil, p, err
	}
	return msgs, p, nil
}

// Completion is OpenAI's chat.completion object.
type Completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             Usage    `json:"usage"`
	SystemFingerprint *string  `json:"system_fingerprint"`
}

// Choice is one completion choice.
type Choice struct {
	Index        int              `json:"index"`
	Message      ChoiceMessage    `json:"message"`
	FinishReason string           `json:"finish_reason"`
	Logprobs     *json.RawMessage `json:"logprobs"`
}

// ChoiceMessage is the assistant's answer.
type ChoiceMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Chunk is OpenAI's chat.completion.chunk object.
type Chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
	SystemFingerprint *string       `json:"system_fingerprint"`
}

// ChunkChoice is one streamed choice.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is the streamed part of the answer.
type Delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

func usageOf(u inference.Usage) Usage {
	return Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
}

// finishReason maps the agent's reason to OpenAI's.
func finishReason(r string) string {
	if r == "length" {
		return "length"
	}
	return "stop"
}

func (h *Handlers) chat(w http.ResponseWriter, r *http.Request) error {
	var req chatRequest
	if err := httpx.DecodeJSON(w, r, &req, 4<<20); err != nil {
		return err
	}
	msgs, params, err := req.params()
	if err != nil {
		return err
	}
	uid := auth.UserID(r)
	t, err := h.resolve(r.Context(), uid, req.Model)
	if err != nil {
		return err
	}
	call, err := h.Inference.Start(r.Context(), inference.ChatParams{UserID: uid, Target: t, Messages: msgs, Params: params, Source: inference.SourceV1})
	if err != nil {
		return err
	}
	id := "chatcmpl-" + strings.TrimPrefix(call.ID, "inf_")
	created := h.Now().Unix()
	if req.Stream {
		return h.stream(w, r, call, Chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model},
			req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
	}
	var text strings.Builder
	for {
		s, res, err := call.Next(r.Context())
		if err != nil {
			return nil // the client went away; the call is cancelled
		}
		text.WriteString(s)
		if res == nil {
			continue
		}
		if res.Err != nil {
			return res.Err
		}
		httpx.JSON(w, http.StatusOK, Completion{ID: id, Object: "chat.completion", Created: created, Model: req.Model,
			Choices: []Choice{{Message: ChoiceMessage{Role: "assistant", Content: text.String()}, FinishReason: finishReason(res.FinishReason)}},
			Usage:   usageOf(res.Usage)})
		return nil
	}
}

// stream relays the call as server-sent events. Headers wait for the first
// text, so an error before any (no agent picked it up in time) is still a
// plain HTTP error.
func (h *Handlers) stream(w http.ResponseWriter, r *http.Request, call *inference.Call, base Chunk, includeUsage bool) error {
	rc := http.NewResponseController(w)
	started := false
	send := func(v any) {
		b, _ := json.Marshal(v)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		_ = rc.Flush()
	}
	start := func() {
		if started {
			return
		}
		started = true
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		c := base
		empty := ""
		c.Choices = []ChunkChoice{{Delta: Delta{Role: "assistant", Content: &empty}}}
		send(c)
	}
	for {
		s, res, err := call.Next(r.Context())
		if err != nil {
			return nil // the client went away; the call is cancelled
		}
		if s != "" {
			start()
			c := base
			c.Choices = []ChunkChoice{{Delta: Delta{Content: &s}}}
			send(c)
			continue
		}
		if res.Err != nil {
			if !started {
				return res.Err
			}
			send(h.Errors.StreamError(r, res.Err))
			return nil
		}
		start()
		c := base
		fr := finishReason(res.FinishReason)
		c.Choices = []ChunkChoice{{Delta: Delta{}, FinishReason: &fr}}
		send(c)
		if includeUsage {
			u := usageOf(res.Usage)
			c := base
			c.Choices, c.Usage = []ChunkChoice{}, &u
			send(c)
		}
		_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
		_ = rc.Flush()
		return nil
	}
}
