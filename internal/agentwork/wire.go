package agentwork

import "github.com/brightrun/brightrun/internal/agentapi"

// ClaimRequest is the body of POST /api/agent/work/claim.
type ClaimRequest struct {
	Agent agentapi.AgentInfo `json:"agent"`
	// Kinds the agent does (today only "preflight").
	Kinds []string `json:"kinds"`
	// BaseModels whose tokenizer the agent can load (["*"]: any).
	BaseModels  []string `json:"base_models"`
	WaitSeconds float64  `json:"wait_seconds"`
}

// ClaimAnswer is a work item, or null after the wait.
type ClaimAnswer struct {
	Work *Work `json:"work"`
}

// Work is one claimed item; the field named like its kind says what to do.
type Work struct {
	ID           string          `json:"id"`
	Kind         string          `json:"kind"`
	Attempt      int             `json:"attempt"`
	LeaseSeconds float64         `json:"lease_seconds"`
	Preflight    *PreflightOrder `json:"preflight"`
}

// PreflightOrder: encode this dataset with this base model's tokenizer and
// chat template, every example whole (no truncation).
type PreflightOrder struct {
	BaseModel       string           `json:"base_model"`
	TrustRemoteCode bool             `json:"trust_remote_code"`
	ValidationShare float64          `json:"validation_share"`
	Dataset         agentapi.FileURL `json:"dataset"`
}

// CompleteRequest is the body of POST /api/agent/work/{id}/complete.
type CompleteRequest struct {
	Preflight *PreflightResult `json:"preflight"`
}

// PreflightResult is the exact token profile: per trainable example
// [total, prompt, target, validation] in the model's tokens (the format of
// the validator's estimated profile, validate.TokenProfile).
type PreflightResult struct {
	Examples int        `json:"examples"`
	Rows     [][4]int32 `json:"rows"`
}

// FailRequest is the body of POST /api/agent/work/{id}/fail.
type FailRequest struct {
	Message string `json:"message"`
}

// DoneAnswer answers complete and fail.
type DoneAnswer struct {
	Status string `json:"status"`
}
