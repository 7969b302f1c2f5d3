package agentwork

import "github.com/brightrun/brightrun/internal/agentapi"

// ClaimRequest is the body of POST /api/agent/work/claim.
type ClaimRequest struct {
	Agent agentapi.AgentInfo `json:"agent"`
	// Kinds the agent does ("preflight", "export").
	Kinds []string `json:"kinds"`
	// BaseModels whose tokenizer (preflight) or weights (export) the agent
	// can load (["*"]: any).
	BaseModels []string `json:"base_models"`
	// ExportFormats the agent makes when it does exports: "merged", and
	// "gguf" only with llama.cpp's converter installed.
	ExportFormats []string `json:"export_formats,omitempty"`
	WaitSeconds   float64  `json:"wait_seconds"`
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
	Export       *ExportOrder    `json:"export,omitempty"`
}

// ExportOrder: merge the adapter into its base model (fp32 on the CPU, then
// Dtype) and, for "gguf", convert the merged model with llama.cpp's
// converter to GGUFType and write an Ollama Modelfile; pack the result as
// one .tar.gz named FileName, upload it (POST /api/agent/work/{id}/upload)
// and complete with its size and sha256.
type ExportOrder struct {
	ExportID        string             `json:"export_id"`
	ModelName       string             `json:"model_name"`
	BaseModel       string             `json:"base_model"`
	TrustRemoteCode bool               `json:"trust_remote_code"`
	Format          string             `json:"format"`
	Dtype           string             `json:"dtype"`
	GGUFType        string             `json:"gguf_type"`
	FileName        string             `json:"file_name"`
	Adapter         []agentapi.FileURL `json:"adapter"`
}

// UploadRequest is the body of POST /api/agent/work/{id}/upload: the size
// of the export archive the agent made.
type UploadRequest struct {
	Size int64 `json:"size"`
}

// UploadAnswer is where to PUT it.
type UploadAnswer struct {
	Upload agentapi.FileURL `json:"upload"`
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
	Preflight *PreflightResult `json:"preflight,omitempty"`
	Export    *ExportResult    `json:"export,omitempty"`
}

// ExportResult is the uploaded archive; the server checks both against the
// stored object before the export is ready.
type ExportResult struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
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
