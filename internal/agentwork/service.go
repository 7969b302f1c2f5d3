// Package agentwork is agent work that is not a training job
// (docs/agent-protocol.md, "Agent work"): items queued in the database,
// long-polled by agents with their agent token, leased, and completed or
// failed by the agent holding them. Two kinds: preflight (an agent encodes a
// dataset with a base model's tokenizer and chat template and uploads the
// exact token profile, which the estimate then uses; docs/estimates.md,
// "Preflight") and export (an agent merges a user's adapter into its base
// model, converts it to GGUF when asked, and uploads the archive; export.go,
// docs/agent-protocol.md "Exports").
package agentwork

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/textsafe"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/google/uuid"
)

// Options tune claims and leases.
type Options struct {
	MaxWait     time.Duration // longest claim long-poll
	Poll        time.Duration // how often a waiting claim looks for work
	Lease       time.Duration // work not finished this long after its claim goes to another agent
	ExportLease time.Duration // the same for exports, which take minutes (0: Lease)
	MaxAttempts int           // leases that may expire before the work fails for good
	RetryFailed time.Duration // a failed preflight is queued again after this long
	URLTTL      time.Duration
	MaxRows     int // most profile rows an agent may upload (examples)
}

// DefaultOptions are the production settings.
var DefaultOptions = Options{MaxWait: 25 * time.Second, Poll: 500 * time.Millisecond, Lease: 15 * time.Minute, ExportLease: 2 * time.Hour, MaxAttempts: 3,
	RetryFailed: time.Hour, URLTTL: time.Hour, MaxRows: 500_000}

// Service implements the work queue.
type Service struct {
	Store   store.Store
	Storage storage.Storage
	Catalog *catalog.Catalog
	Log     *slog.Logger
	Now     func() time.Time
	Opts    Options
}

// Kinds an agent may ask for.
var knownKinds = []string{store.WorkPreflight, store.WorkExport}

// Exact is what training asks: the exact token profile of one of the
// user's datasets for a base model (nil until an agent computed it) and, when
// there is none, the state of the preflight that computes it ("queued",
// "running", "failed"; "" when none could be queued: the dataset is not
// ready). Asking queues the preflight when none is open.
func (s *Service) Exact(ctx context.Context, userID string, d store.Dataset, baseModel string) (*validate.TokenProfile, string, error) {
	prof, err := s.Store.DatasetModelProfile(ctx, userID, d.ID, baseModel)
	if err != nil || prof != nil {
		return prof, "", err
	}
	if d.Status != store.DatasetReady || !d.TrainingReady {
		return nil, "", nil
	}
	now := s.Now().UTC()
	if w, ok, err := s.Store.AgentWorkLatest(ctx, userID, store.WorkPreflight, d.ID, baseModel); err != nil {
		return nil, "", err
	} else if ok && (w.Status == store.WorkQueued || w.Status == store.WorkRunning || (w.Status == store.WorkFailed && now.Sub(w.UpdatedAt) < s.Opts.RetryFailed)) {
		return nil, w.Status, nil
	}
	id := uuid.NewString()
	w, ok, err := s.Store.AgentWorkEnqueue(store.AsSystem(ctx), store.AgentWorkEnqueueParams{ID: id, Kind: store.WorkPreflight,
		UserID: userID, DatasetID: d.ID, BaseModel: baseModel, RetryFailedAfter: now.Add(-s.Opts.RetryFailed), At: now})
	if err != nil {
		return nil, "", err
	}
	if !ok {
		// Completed meanwhile (read it), or failed recently.
		prof, err := s.Store.DatasetModelProfile(ctx, userID, d.ID, baseModel)
		if prof != nil || err != nil {
			return prof, "", err
		}
		return nil, store.WorkFailed, nil
	}
	if w.ID == id {
		s.Log.Info("preflight queued", "work", w.ID, "dataset", d.ID, "model", baseModel)
	}
	return nil, w.Status, nil
}

// Claim hands the agent the oldest work it can do, waiting up to the asked
// time (bounded) for some to appear. An agent bound to one training job (a
// launched agent) gets none.
func (s *Service) Claim(ctx context.Context, agent store.Agent, req ClaimRequest) (*Work, error) {
	f := apperr.FieldErrors{}
	if len(req.Kinds) == 0 {
		f.Add("kinds", `list the kinds of work this agent does (["preflight"], ["export"])`)
	}
	for _, k := range req.Kinds {
		if !slices.Contains(knownKinds, k) {
			f.Add("kinds", fmt.Sprintf("unknown kind %q: use %v", k, knownKinds))
		}
	}
	if len(req.BaseModels) == 0 {
		f.Add("base_models", `list the base models whose tokenizer this agent can load (["*"] for any)`)
	}
	checkExportFormats(f, req)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if agent.JobID != "" {
		return nil, nil
	}
	models := req.BaseModels
	if slices.Contains(models, "*") {
		models = nil
	}
	wait := min(time.Duration(req.WaitSeconds*float64(time.Second)), s.Opts.MaxWait)
	deadline := time.Now().Add(wait)
	sys := store.AsSystem(ctx)
	for {
		w, ok, err := s.claimOnce(sys, agent, req, models)
		if err != nil {
			return nil, err
		}
		if ok {
			return s.order(sys, agent, w)
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(s.Opts.Poll):
		}
	}
}

// claimOnce claims the oldest work of the asked kinds, each kind with its
// lease: the quick kinds first, then exports (leased for ExportLease).
func (s *Service) claimOnce(ctx context.Context, agent store.Agent, req ClaimRequest, models []string) (store.AgentWork, bool, error) {
	var quick, export []string
	for _, k := range req.Kinds {
		if k == store.WorkExport {
			export = append(export, k)
		} else {
			quick = append(quick, k)
		}
	}
	for _, g := range []struct {
		kinds []string
		lease time.Duration
	}{{quick, s.Opts.Lease}, {export, s.exportLease()}} {
		if len(g.kinds) == 0 {
			continue
		}
		w, ok, err := s.Store.AgentWorkClaim(ctx, store.AgentWorkClaimParams{AgentID: agent.ID, Kinds: g.kinds, BaseModels: models,
			ExportFormats: req.ExportFormats, Lease: g.lease, MaxAttempts: s.Opts.MaxAttempts, Now: s.Now().UTC()})
		if err != nil || ok {
			return w, ok, err
		}
	}
	return store.AgentWork{}, false, nil
}

func (s *Service) exportLease() time.Duration {
	if s.Opts.ExportLease > 0 {
		return s.Opts.ExportLease
	}
	return s.Opts.Lease
}

// order turns claimed work into what the agent needs (a signed dataset URL).
func (s *Service) order(ctx context.Context, agent store.Agent, w store.AgentWork) (*Work, error) {
	if w.Kind == store.WorkExport {
		return s.orderExport(ctx, agent, w)
	}
	d, err := s.Store.DatasetGet(ctx, w.UserID, w.DatasetID)
	if apperr.Is(err, apperr.KindNotFound) {
		// Deleted since it was queued: nothing to do.
		return nil, s.Store.AgentWorkFail(ctx, store.AgentWorkFailParams{ID: w.ID, AgentID: agent.ID, Error: "the dataset was deleted", At: s.Now().UTC()})
	}
	if err != nil {
		return nil, err
	}
	url, err := s.Storage.SignedDownloadURL(ctx, storage.BucketDatasets, d.StoragePath, s.Opts.URLTTL, d.FileName)
	if err != nil {
		return nil, err
	}
	m, _ := s.Catalog.Model(w.BaseModel)
	s.Log.Info("preflight claimed", "work", w.ID, "attempt", w.Attempts, "agent", agent.Name, "model", w.BaseModel)
	return &Work{ID: w.ID, Kind: w.Kind, Attempt: w.Attempts, LeaseSeconds: s.Opts.Lease.Seconds(), Preflight: &PreflightOrder{
		BaseModel: w.BaseModel, TrustRemoteCode: m.TrustRemoteCode, ValidationShare: 0.1,
		Dataset: agentapi.FileURL{Name: d.FileName, URL: url, Size: d.FileSize}}}, nil
}

// Complete stores the result of work the agent holds (404 otherwise).
func (s *Service) Complete(ctx context.Context, agent store.Agent, id string, req CompleteRequest) error {
	sys := store.AsSystem(ctx)
	w, err := s.Store.AgentWorkGet(sys, id, agent.ID)
	if err != nil {
		return err
	}
	if w.Kind == store.WorkExport {
		if req.Export == nil {
			return apperr.Validation("validation failed", map[string]string{"export": "send the uploaded archive: {size, sha256}"})
		}
		return s.completeExport(sys, agent, id, *req.Export)
	}
	if req.Preflight == nil {
		return apperr.Validation("validation failed", map[string]string{"preflight": "send the preflight result: {examples, rows}"})
	}
	prof, err := s.profile(*req.Preflight)
	if err != nil {
		return err
	}
	if err := s.Store.AgentWorkComplete(sys, store.AgentWorkCompleteParams{ID: w.ID, AgentID: agent.ID, Profile: prof, At: s.Now().UTC()}); err != nil {
		return err
	}
	s.Log.Info("preflight completed", "work", w.ID, "dataset", w.DatasetID, "model", w.BaseModel, "examples", req.Preflight.Examples)
	return nil
}

// profile checks an uploaded profile and sorts it like the validator's.
func (s *Service) profile(p PreflightResult) (validate.TokenProfile, error) {
	bad := func(msg string) (validate.TokenProfile, error) {
		return validate.TokenProfile{}, apperr.Validation("validation failed", map[string]string{"preflight.rows": msg})
	}
	if p.Examples < 1 || len(p.Rows) != p.Examples {
		return bad(fmt.Sprintf("send one row per trainable example (examples %d, rows %d)", p.Examples, len(p.Rows)))
	}
	if len(p.Rows) > s.Opts.MaxRows {
		return bad(fmt.Sprintf("at most %d rows: larger datasets keep the estimated profile", s.Opts.MaxRows))
	}
	for i, r := range p.Rows {
		if r[0] < 1 || r[1] < 0 || r[2] < 0 || r[1] > r[0] || r[2] > r[0] || (r[3] != 0 && r[3] != 1) {
			return bad(fmt.Sprintf("row %d %v: want [total ≥ 1, 0 ≤ prompt ≤ total, 0 ≤ target ≤ total, validation 0 or 1]", i, r))
		}
	}
	rows := slices.Clone(p.Rows)
	slices.SortFunc(rows, func(a, b [4]int32) int {
		for k := range a {
			if a[k] != b[k] {
				return int(a[k] - b[k])
			}
		}
		return 0
	})
	return validate.TokenProfile{Examples: p.Examples, Rows: rows}, nil
}

// Fail records that the agent could not do the work (it is queued again
// after Options.RetryFailed when someone asks for it).
func (s *Service) Fail(ctx context.Context, agent store.Agent, id string, req FailRequest) error {
	msg := textsafe.Clean(req.Message, 4000)
	if msg == "" {
		msg = "the agent gave no reason"
	}
	if err := s.Store.AgentWorkFail(store.AsSystem(ctx), store.AgentWorkFailParams{ID: id, AgentID: agent.ID, Error: msg, At: s.Now().UTC()}); err != nil {
		return err
	}
	s.Log.Warn("agent work failed", "work", id, "agent", agent.Name, "error", msg)
	return nil
}
