package models

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// ExportRequest asks for an export (POST /api/models/{id}/exports).
type ExportRequest struct {
	Format   string `json:"format"`    // merged | gguf
	Dtype    string `json:"dtype"`     // merged: bfloat16 (default) | float16 | float32
	GGUFType string `json:"gguf_type"` // gguf: f16 (default) | q8_0 | f32 | bf16
}

var (
	mergedDtypes = []string{"bfloat16", "float16", "float32"}
	ggufTypes    = []string{"f16", "q8_0", "f32", "bf16"}
)

// Export is an export as the API and the model page show it. Status is
// queued, running (Agent makes it), ready (Download works) or failed (Error
// says why, Hint what to do; asking again retries it).
type Export struct {
	ID         string     `json:"id"`
	Format     string     `json:"format"`
	Dtype      string     `json:"dtype,omitempty"`
	GGUFType   string     `json:"gguf_type,omitempty"`
	Label      string     `json:"label"`
	Status     string     `json:"status"`
	Agent      string     `json:"agent,omitempty"`
	Error      string     `json:"error,omitempty"`
	Hint       string     `json:"hint,omitempty"`
	FileName   string     `json:"file_name,omitempty"`
	SizeBytes  int64      `json:"size_bytes,omitempty"`
	SHA256     string     `json:"sha256,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Download   string     `json:"download_url,omitempty"`
}

// ExportMergeDtype is the dtype the agent saves the merged model in: the
// asked one, and float32 for a GGUF export (the converter then writes the
// asked GGUF type from exact weights).
func ExportMergeDtype(e store.ModelExport) string {
	if e.Format == store.ExportGGUF {
		return "float32"
	}
	return e.Dtype
}

// ExportFileName names an export's archive after the model.
func ExportFileName(m store.Model, e store.ModelExport) string {
	base := strings.TrimSuffix(ArchiveName(m), ".tar.gz")
	if e.Format == store.ExportGGUF {
		return fmt.Sprintf("%s-gguf-%s.tar.gz", base, e.GGUFType)
	}
	return fmt.Sprintf("%s-merged-%s.tar.gz", base, e.Dtype)
}

func exportLabel(e store.ModelExport) string {
	if e.Format == store.ExportGGUF {
		return fmt.Sprintf("GGUF for llama.cpp / Ollama (%s)", e.GGUFType)
	}
	return fmt.Sprintf("Merged model (safetensors, %s)", e.Dtype)
}

// exportHint says what to do about an agent's failure.
func exportHint(msg string) string {
	switch low := strings.ToLower(msg); {
	case strings.Contains(low, "converter failed"):
		return "llama.cpp's converter cannot convert this model (its architecture or tokenizer is not one llama.cpp knows): download the merged model instead."
	case strings.Contains(low, "needs llama.cpp's converter"):
		return "The agent has no llama.cpp converter: install it there with scripts/llama-cpp-converter.sh (or set BRIGHTRUN_LLAMA_CPP_DIR) and press Retry, or download the merged model instead."
	case strings.Contains(low, "no space") || strings.Contains(low, "disk"):
		return "The agent ran out of disk space: free some in its work directory and press Retry."
	case strings.Contains(low, "memory") || strings.Contains(low, "oom"):
		return "The agent ran out of memory loading the base model in float32: run the export on an agent with more RAM and press Retry."
	case strings.Contains(low, "deleted"):
		return ""
	}
	return "Press Retry to queue it again; the agent's log has the details."
}

func exportView(modelID string, e store.ModelExport) Export {
	v := Export{ID: e.ID, Format: e.Format, Dtype: e.Dtype, GGUFType: e.GGUFType, Label: exportLabel(e), Agent: e.AgentName,
		FileName: e.FileName, SizeBytes: e.SizeBytes, SHA256: e.SHA256, CreatedAt: e.CreatedAt}
	switch e.Status {
	case store.WorkCompleted:
		v.Status = "ready"
		v.FinishedAt = e.ReadyAt
		v.Download = fmt.Sprintf("/api/models/%s/exports/%s/download", modelID, e.ID)
	case store.WorkFailed:
		v.Status = "failed"
		at := e.UpdatedAt
		v.FinishedAt = &at
		v.Error = e.Error
		v.Hint = exportHint(e.Error)
		v.Agent = ""
	default:
		v.Status = e.Status
	}
	if v.Status == store.WorkQueued {
		v.Agent = ""
	}
	return v
}

// checkExport validates the request and fills its defaults.
func checkExport(r ExportRequest) (ExportRequest, error) {
	f := apperr.FieldErrors{}
	switch r.Format {
	case store.ExportMerged:
		if r.Dtype == "" {
			r.Dtype = "bfloat16"
		}
		if !slices.Contains(mergedDtypes, r.Dtype) {
			f.Add("dtype", fmt.Sprintf("use one of %s", strings.Join(mergedDtypes, ", ")))
		}
		if r.GGUFType != "" {
			f.Add("gguf_type", `only a "gguf" export has a GGUF type`)
		}
	case store.ExportGGUF:
		if r.GGUFType == "" {
			r.GGUFType = "f16"
		}
		if !slices.Contains(ggufTypes, r.GGUFType) {
			f.Add("gguf_type", fmt.Sprintf("use one of %s", strings.Join(ggufTypes, ", ")))
		}
		if r.Dtype != "" {
			f.Add("dtype", `only a "merged" export has a dtype (a GGUF export merges in float32 and converts to gguf_type)`)
		}
	default:
		f.Add("format", `use "merged" (safetensors) or "gguf" (llama.cpp / Ollama)`)
	}
	return r, f.Err()
}

// hasAdapter: the model's training finished with a PEFT adapter to export.
func hasAdapter(m store.Model) bool {
	var cfg, weights bool
	for _, f := range m.Artifacts.Files {
		switch path.Base(f.Name) {
		case "adapter_config.json":
			cfg = true
		case "adapter_model.safetensors", "adapter_model.bin":
			weights = true
		}
	}
	return cfg && weights
}

// RequestExport queues an export of one of the user's models, or returns
// the one already asked for (queued again when it failed). queued says
// whether it was queued now.
func (s *Service) RequestExport(ctx context.Context, userID, modelID string, r ExportRequest) (Export, bool, error) {
	r, err := checkExport(r)
	if err != nil {
		return Export{}, false, err
	}
	m, err := s.Store.ModelGet(ctx, userID, modelID)
	if err != nil {
		return Export{}, false, err
	}
	if !hasAdapter(m) {
		return Export{}, false, apperr.Conflict("the model %q has no finished adapter to export (its training did not complete): export a model whose job completed", m.Name)
	}
	dtype := r.Dtype
	if r.Format == store.ExportGGUF {
		dtype = ""
	}
	e, queued, err := s.Store.ModelExportCreate(store.AsSystem(ctx), store.ModelExportCreateParams{ID: uuid.NewString(), WorkID: uuid.NewString(),
		UserID: userID, ModelID: m.ID, BaseModel: m.BaseModel, Format: r.Format, Dtype: dtype, GGUFType: r.GGUFType, At: s.Now().UTC()})
	if err != nil {
		return Export{}, false, err
	}
	if queued {
		s.Log.Info("export queued", "export", e.ID, "model", m.ID, "format", e.Format, "dtype", e.Dtype, "gguf_type", e.GGUFType)
	}
	return exportView(m.ID, e), queued, nil
}

// Exports lists a model's exports.
func (s *Service) Exports(ctx context.Context, userID, modelID string) ([]Export, error) {
	if _, err := s.Store.ModelGet(ctx, userID, modelID); err != nil {
		return nil, err
	}
	list, err := s.Store.ModelExportList(ctx, userID, modelID)
	if err != nil {
		return nil, err
	}
	out := make([]Export, 0, len(list))
	for _, e := range list {
		out = append(out, exportView(modelID, e))
	}
	return out, nil
}

// ExportDownloadURL signs a link to a ready export's archive.
func (s *Service) ExportDownloadURL(ctx context.Context, userID, modelID, id string) (string, error) {
	e, err := s.Store.ModelExportGet(ctx, userID, modelID, id)
	if err != nil {
		return "", err
	}
	if e.Status != store.WorkCompleted || e.StoragePath == "" {
		return "", apperr.Conflict("the export is %s, not ready yet: download it once its status is ready", exportView(modelID, e).Status)
	}
	return s.Storage.SignedDownloadURL(ctx, storage.BucketModels, e.StoragePath, downloadTTL, e.FileName)
}

// DeleteExport removes an export and its stored archive (an export being
// made is stopped: its agent's result is refused).
func (s *Service) DeleteExport(ctx context.Context, userID, modelID, id string) error {
	e, err := s.Store.ModelExportDelete(store.AsSystem(ctx), userID, modelID, id, s.Now().UTC())
	if err != nil {
		return err
	}
	s.removeExportFile(context.WithoutCancel(ctx), e)
	return nil
}

func (s *Service) removeExportFile(ctx context.Context, e store.ModelExport) {
	if e.StoragePath == "" {
		return
	}
	if err := s.Storage.Delete(ctx, storage.BucketModels, e.StoragePath); err != nil {
		s.Log.Warn("export file delete failed", "export", e.ID, "err", err)
	}
}
