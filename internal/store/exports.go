package store

import (
	"context"
	"time"
)

// WorkExport: merge an adapter into its base model (and convert the result
// to GGUF) and upload the archive (docs/agent-protocol.md, "Exports").
const WorkExport = "export"

// Export formats.
const (
	ExportMerged = "merged"
	ExportGGUF   = "gguf"
)

// ModelExport is one export of a model (model_exports) with the state of
// the agent work that makes it: Status is the work's (queued, running,
// completed, failed), Error its failure, AgentName the agent that holds or
// held it.
type ModelExport struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"`
	ModelID     string     `json:"model_id"`
	WorkID      string     `json:"work_id"`
	Format      string     `json:"format"`
	Dtype       string     `json:"dtype"`
	GGUFType    string     `json:"gguf_type"`
	FileName    string     `json:"file_name"`
	StoragePath string     `json:"-"`
	SizeBytes   int64      `json:"size_bytes"`
	SHA256      string     `json:"sha256"`
	CreatedAt   time.Time  `json:"created_at"`
	ReadyAt     *time.Time `json:"ready_at"`
	BaseModel   string     `json:"base_model"`
	Status      string     `json:"status"`
	Error       string     `json:"error"`
	AgentID     string     `json:"-"`
	AgentName   string     `json:"agent_name"`
	Attempts    int        `json:"attempts"`
	UpdatedAt   time.Time  `json:"updated_at"` // the work's last change (a failure's time)
}

// ModelExportCreateParams ask for an export of one of the user's models:
// a new export with its queued work (IDs given), unless a live export of the
// same (model, format, dtype, gguf type) exists: then that one, queued again
// when its work failed.
type ModelExportCreateParams struct {
	ID, WorkID, UserID, ModelID, BaseModel string
	Format, Dtype, GGUFType                string
	At                                     time.Time
}

// ModelExportFinishParams store the uploaded result and complete the work,
// in one transaction; only the agent holding the work may, and only while
// the export is not deleted.
type ModelExportFinishParams struct {
	WorkID, AgentID     string
	FileName            string
	StoragePath, SHA256 string
	SizeBytes           int64
	At                  time.Time
}

// ModelExportStore persists exports. Users may only read them (PostgreSQL RLS):
// the exports service writes as the system, always for one user id.
type ModelExportStore interface {
	// ModelExportCreate returns the export and whether it was queued now
	// (created, or a failed one queued again); false: it was already queued,
	// running or ready.
	ModelExportCreate(ctx context.Context, p ModelExportCreateParams) (ModelExport, bool, error)
	// ModelExportList lists a model's live exports, oldest first.
	ModelExportList(ctx context.Context, userID, modelID string) ([]ModelExport, error)
	ModelExportGet(ctx context.Context, userID, modelID, id string) (ModelExport, error)
	// ModelExportDelete marks the export deleted (its work, when still open,
	// fails so its agent's result is refused) and returns it.
	ModelExportDelete(ctx context.Context, userID, modelID, id string, at time.Time) (ModelExport, error)
	// ModelExportByWork is the live export an agent's work item makes (404 when deleted).
	ModelExportByWork(ctx context.Context, workID string) (ModelExport, error)
	ModelExportFinish(ctx context.Context, p ModelExportFinishParams) error
}
