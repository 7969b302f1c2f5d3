// Package inference runs chat generation on trainer agents: a per-process
// broker queues requests fairly across users, hands them to agents that
// long-poll for work (docs/agent-protocol.md, "Inference"), relays the text
// they post back to the waiting caller, cancels on disconnect, times out with
// clear errors, and records usage and an 'inference' cost record per request.
//
// The broker lives in the server process's memory: with several replicas,
// agents and callers must reach the same replica (route /v1/chat/…,
// /api/playground/… and /api/agent/inference/… to one replica, or pin them by
// a sticky rule). Training work is unaffected (it is in the database).
package inference

import (
	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/jobdoc"
)

// The wire types of the agent protocol's inference calls.

// AgentInfo and Capabilities are the training claim's (one definition of
// the agent's identity and hardware; gpu_type prices its tokens).
type (
	AgentInfo    = agentapi.AgentInfo
	Capabilities = agentapi.Capabilities
)

// ClaimRequest is the body of POST /api/agent/inference/claim.
type ClaimRequest struct {
	Agent        AgentInfo    `json:"agent"`
	Capabilities Capabilities `json:"capabilities"`
	BaseModels   []string     `json:"base_models"`
	Loaded       []string     `json:"loaded"`
	WaitSeconds  float64      `json:"wait_seconds"` // agents may send 2.0

}

// Message is one chat turn (defined once, in jobdoc).
type Message = jobdoc.Message

// Params are the sampling settings.
type Params struct {
	MaxTokens   int      `json:"max_tokens"`
	Temperature float64  `json:"temperature"`
	TopP        float64  `json:"top_p"`
	Seed        *int64   `json:"seed"`
	Stop        []string `json:"stop"`
}

// AdapterFile is one adapter file with a signed GET URL.
type AdapterFile struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Size int64  `json:"size"`
}

// Adapter is the LoRA adapter a request uses (nil: the base model).
type Adapter struct {
	ModelID string        `json:"model_id"`
	Version int           `json:"version"`
	Files   []AdapterFile `json:"files"`
}

// Work is a claimed request as the agent receives it.
type Work struct {
	ID             string    `json:"id"`
	BaseModel      string    `json:"base_model"`
	Adapter        *Adapter  `json:"adapter"`
	Messages       []Message `json:"messages"`
	Params         Params    `json:"params"`
	TimeoutSeconds int       `json:"timeout_seconds"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// Timings are the agent's own measurements.
type Timings struct {
	QueueSeconds      float64 `json:"queue_seconds"`
	LoadSeconds       float64 `json:"load_seconds"`
	FirstTokenSeconds float64 `json:"first_token_seconds"`
	GenerateSeconds   float64 `json:"generate_seconds"`
}

// StreamError ends a stream that failed on the agent.
type StreamError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// StreamPost is the body of POST /api/agent/inference/{id}/stream.
type StreamPost struct {
	Seq          *int         `json:"seq"`
	Text         string       `json:"text"`
	Done         bool         `json:"done"`
	FinishReason string       `json:"finish_reason"`
	Usage        *Usage       `json:"usage"`
	Timings      *Timings     `json:"timings"`
	Error        *StreamError `json:"error"`
}

// StreamAnswer tells the agent whether to stop.
type StreamAnswer struct {
	Cancel bool `json:"cancel"`
}
