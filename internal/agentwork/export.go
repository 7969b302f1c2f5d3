package agentwork

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/models"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
)

// ExportFormats an agent may declare.
var exportFormats = []string{store.ExportMerged, store.ExportGGUF}

// exportPath is where an export's archive is stored.
func exportPath(e store.ModelExport) string {
	return fmt.Sprintf("%s/%s/exports/%s/%s", e.UserID, e.ModelID, e.ID, path.Base(e.FileName))
}

// orderExport turns claimed export work into what the agent needs: signed
// URLs of the adapter files and what to make of them.
func (s *Service) orderExport(ctx context.Context, agent store.Agent, w store.AgentWork) (*Work, error) {
	gone := func(why string) (*Work, error) {
		return nil, s.Store.AgentWorkFail(ctx, store.AgentWorkFailParams{ID: w.ID, AgentID: agent.ID, Error: why, At: s.Now().UTC()})
	}
	e, err := s.Store.ModelExportByWork(ctx, w.ID)
	if apperr.Is(err, apperr.KindNotFound) {
		return gone("the export was deleted")
	}
	if err != nil {
		return nil, err
	}
	m, err := s.Store.ModelGet(ctx, e.UserID, e.ModelID)
	if apperr.Is(err, apperr.KindNotFound) {
		return gone("the model was deleted")
	}
	if err != nil {
		return nil, err
	}
	adapter := make([]agentapi.FileURL, 0, len(m.Artifacts.Files))
	for _, f := range m.Artifacts.Files {
		u, err := s.Storage.SignedDownloadURL(ctx, storage.BucketModels, f.StoragePath, s.Opts.URLTTL, "")
		if err != nil {
			return nil, err
		}
		adapter = append(adapter, agentapi.FileURL{Name: f.Name, URL: u, Size: f.Size})
	}
	cm, _ := s.Catalog.Model(w.BaseModel)
	s.Log.Info("export claimed", "work", w.ID, "export", e.ID, "format", e.Format, "attempt", w.Attempts, "agent", agent.Name)
	return &Work{ID: w.ID, Kind: w.Kind, Attempt: w.Attempts, LeaseSeconds: s.exportLease().Seconds(), Export: &ExportOrder{
		ExportID: e.ID, ModelName: m.Name, BaseModel: w.BaseModel, TrustRemoteCode: cm.TrustRemoteCode, Format: e.Format,
		Dtype: models.ExportMergeDtype(e), GGUFType: e.GGUFType, FileName: models.ExportFileName(m, e), Adapter: adapter}}, nil
}

// heldExport loads the export of work the agent holds (404 otherwise).
func (s *Service) heldExport(ctx context.Context, agent store.Agent, id string) (store.ModelExport, store.Model, error) {
	w, err := s.Store.AgentWorkGet(ctx, id, agent.ID)
	if err != nil {
		return store.ModelExport{}, store.Model{}, err
	}
	if w.Kind != store.WorkExport {
		return store.ModelExport{}, store.Model{}, apperr.Validation("validation failed", map[string]string{"kind": "only export work uploads a file"})
	}
	e, err := s.Store.ModelExportByWork(ctx, id)
	if err != nil {
		return e, store.Model{}, err
	}
	m, err := s.Store.ModelGet(ctx, e.UserID, e.ModelID)
	if err != nil {
		return e, m, err
	}
	e.FileName = models.ExportFileName(m, e)
	return e, m, nil
}

// Upload signs a write-once PUT URL for the export archive the agent made.
func (s *Service) Upload(ctx context.Context, agent store.Agent, id string, req UploadRequest) (agentapi.FileURL, error) {
	sys := store.AsSystem(ctx)
	e, _, err := s.heldExport(sys, agent, id)
	if err != nil {
		return agentapi.FileURL{}, err
	}
	if req.Size <= 0 || req.Size > storage.MaxModelSize {
		return agentapi.FileURL{}, apperr.Validation("validation failed", map[string]string{"size": fmt.Sprintf(
			"give the archive's size in bytes, 1 to %d (larger exports cannot be stored here)", storage.MaxModelSize)})
	}
	p := exportPath(e)
	url, headers, err := s.Storage.SignedUploadURL(sys, storage.BucketModels, p, storage.UploadOptions{MaxSize: req.Size,
		ContentType: "application/gzip", TTL: s.Opts.URLTTL})
	if err != nil {
		return agentapi.FileURL{}, err
	}
	return agentapi.FileURL{Name: e.FileName, URL: url, Method: "PUT", Headers: headers, Size: req.Size}, nil
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// completeExport checks the uploaded archive (its size and sha256, read
// back from storage) and makes the export ready.
func (s *Service) completeExport(ctx context.Context, agent store.Agent, id string, r ExportResult) error {
	if r.Size <= 0 || !hexSHA256.MatchString(r.SHA256) {
		return apperr.Validation("validation failed", map[string]string{"export": "send the uploaded archive's size (bytes) and sha256 (64 lowercase hex digits)"})
	}
	e, _, err := s.heldExport(ctx, agent, id)
	if err != nil {
		return err
	}
	p := exportPath(e)
	sum, n, err := s.digest(ctx, p)
	if errors.Is(err, storage.ErrNotFound) {
		return apperr.Conflict("%s was not uploaded: PUT it to the URL from /upload first", e.FileName)
	}
	if err != nil {
		return err
	}
	if n != r.Size || sum != r.SHA256 {
		return apperr.Conflict("the stored archive has %d bytes and sha256 %s, but %d bytes and %s were declared: upload it again", n, sum, r.Size, r.SHA256)
	}
	if err := s.Store.ModelExportFinish(ctx, store.ModelExportFinishParams{WorkID: id, AgentID: agent.ID, FileName: e.FileName, StoragePath: p,
		SHA256: sum, SizeBytes: n, At: s.Now().UTC()}); err != nil {
		return err
	}
	s.Log.Info("export ready", "work", id, "export", e.ID, "format", e.Format, "bytes", n)
	return nil
}

// digest streams a stored object once: its sha256 and size.
func (s *Service) digest(ctx context.Context, p string) (string, int64, error) {
	rc, err := s.Storage.Open(ctx, storage.BucketModels, p)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkExportFormats validates what an export agent declares.
func checkExportFormats(f interface{ Add(string, string) }, req ClaimRequest) {
	if !slices.Contains(req.Kinds, store.WorkExport) {
		return
	}
	if len(req.ExportFormats) == 0 {
		f.Add("export_formats", `list the export formats this agent makes: ["merged"], or ["merged", "gguf"] with llama.cpp's converter`)
	}
	for _, x := range req.ExportFormats {
		if !slices.Contains(exportFormats, x) {
			f.Add("export_formats", fmt.Sprintf("unknown format %q: use %v", x, exportFormats))
		}
	}
}

// UploadAllowed guards signed uploads to the models bucket on the local
// backend: a path of an export ({user}/{model}/exports/{export}/{file}) may
// be written only while its export is live and being made (a deleted
// export's URL stops working); other paths (training's adapters and
// checkpoints) are not guarded here.
func (s *Service) UploadAllowed(ctx context.Context, bucket, p string) error {
	parts := strings.Split(p, "/")
	if bucket != storage.BucketModels || len(parts) != 5 || parts[2] != "exports" {
		return nil
	}
	e, err := s.Store.ModelExportGet(store.AsSystem(ctx), parts[0], parts[1], parts[3])
	if apperr.Is(err, apperr.KindNotFound) {
		return fmt.Errorf("%w: the export was deleted", storage.ErrUploadClosed)
	}
	if err != nil {
		return err
	}
	if e.Status != store.WorkRunning {
		return fmt.Errorf("%w: the export is %s, not being made", storage.ErrUploadClosed, e.Status)
	}
	return nil
}
