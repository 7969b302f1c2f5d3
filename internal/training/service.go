// Package training is the training-configuration domain: the catalog API,
// cost/time/memory estimates, job creation with budget checks, job lists
// and cancellation, and the configure and jobs pages.
package training

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/brightrun/brightrun/internal/training/estimate"
	"github.com/google/uuid"
)

// Service implements the use cases.
type Service struct {
	Store   store.Store
	Jobs    *jobs.Service // the lifecycle (cancel)
	Catalog *catalog.Catalog
	Log     *slog.Logger
	Now     func() time.Time
	// Agents says whether an online agent can run a GPU choice (nil: the
	// checklist does not say).
	Agents AgentChecker
	// Exact gives the exact token profile of a dataset for a base model
	// (an agent's preflight) and queues one when there is none (nil: the
	// estimated profile only).
	Exact ExactProfiles
}

// ExactProfiles is what training asks the agent-work domain: the exact
// profile (nil until computed) or the state of the preflight computing it.
type ExactProfiles interface {
	Exact(ctx context.Context, userID string, d store.Dataset, baseModel string) (*validate.TokenProfile, string, error)
}

// AgentChecker is what training asks the agents domain.
type AgentChecker interface {
	CapableMessage(ctx context.Context, gpuType string, count int) (bool, string, error)
}

// GPUConfig is the spec's GPUConfig, the job's gpu_config document. Price
// and memory always come from the catalog: a client-sent value must match
// it (or be left out).
type GPUConfig = jobdoc.GPUConfig

// Request is the body of POST /api/jobs/estimate and POST /api/jobs.
type Request struct {
	DatasetID       string          `json:"dataset_id"`
	PresetID        string          `json:"preset_id"`
	Hyperparameters json.RawMessage `json:"hyperparameters"`
	GPUConfig       GPUConfig       `json:"gpu_config"`
	// AllowTruncation consents to a max_seq_length that drops examples
	// (POST /api/jobs refuses one otherwise).
	AllowTruncation bool `json:"allow_truncation,omitempty"`
	// Name is an optional label for the job (at most 200 characters).
	Name string `json:"name,omitempty"`
}

// Budget is the user's monthly budget position.
type Budget struct {
	MonthlyBudget *float64 `json:"monthly_budget"`
	HardStop      bool     `json:"hard_stop"`
	Spent         float64  `json:"spent_this_month"`
	Committed     float64  `json:"committed"` // estimates of queued and running jobs
	Remaining     *float64 `json:"remaining"`
	WithinBudget  bool     `json:"within_budget"`
}

// Check is one line of the pre-flight checklist.
type Check struct {
	ID      string `json:"id"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// EstimateResponse is the spec's estimate plus what the configure page shows.
type EstimateResponse struct {
	estimate.Result
	Hyperparameters catalog.Hyperparameters `json:"hyperparameters"`
	GPUConfig       GPUConfig               `json:"gpu_config"`
	Dataset         *DatasetTokens          `json:"dataset,omitempty"`
	Preflight       *Preflight              `json:"preflight,omitempty"`
	Budget          Budget                  `json:"budget"`
	Checklist       []Check                 `json:"checklist"`
}

// DatasetTokens is what the estimate used from the dataset.
type DatasetTokens struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	TrainExamples int    `json:"train_examples"`
	EvalExamples  int    `json:"eval_examples"`
	TrainTokens   int64  `json:"train_tokens"`
	EvalTokens    int64  `json:"eval_tokens"`
	Ready         bool   `json:"ready"`
	// ValidationDatasetID is set when a separate validation dataset is
	// evaluated: then the whole dataset trains (no held-out share) and the
	// eval figures are the validation dataset's.
	ValidationDatasetID string `json:"validation_dataset_id,omitempty"`
}

// resolved is a validated request.
type resolved struct {
	req     Request
	h       catalog.Hyperparameters
	model   catalog.BaseModel
	gpu     catalog.GPU
	dataset *store.Dataset
	tokens  *DatasetTokens
	pre     *Preflight
}

func (s *Service) resolve(ctx context.Context, userID string, req Request, needDataset bool) (*resolved, error) {
	f := apperr.FieldErrors{}
	if req.PresetID == "" {
		req.PresetID = "balanced"
	}
	if _, ok := s.Catalog.Preset(req.PresetID); !ok {
		return nil, apperr.Validation("validation failed", map[string]string{"preset_id": "use one of " + strings.Join(s.presetIDs(), ", ")})
	}
	h, err := s.Catalog.ResolveJSON(req.PresetID, req.Hyperparameters)
	if err != nil {
		e := apperr.FromJSONField(err, "hyperparameters")
		e.Message += " (GET /api/catalog lists the hyperparameters and their types)"
		return nil, e
	}
	model, ok := s.Catalog.Model(h.BaseModel)
	if !ok {
		f.Add("hyperparameters.base_model", fmt.Sprintf("%q is not in the model catalog (GET /api/catalog lists them)", h.BaseModel))
	}
	for k, v := range catalog.ValidateHyperparameters(h) {
		f.Add("hyperparameters."+k, v)
	}
	if ok {
		for k, v := range catalog.ValidateForModel(h, model) {
			f.Add("hyperparameters."+k, v)
		}
	}
	g := req.GPUConfig
	gpu, gok := s.Catalog.GPU(g.GPUType)
	if !gok {
		f.Add("gpu_config.gpu_type", fmt.Sprintf("%q is not in the GPU catalog (GET /api/catalog lists them)", g.GPUType))
	} else {
		if g.NumGPUs == 0 {
			g.NumGPUs = 1
		}
		if !slices.Contains(gpu.AllowedCounts, g.NumGPUs) {
			f.Add("gpu_config.num_gpus", fmt.Sprintf("%s allows %v GPUs", gpu.DisplayName, gpu.AllowedCounts))
		}
		if g.CostPerGPUHour != nil && math.Abs(*g.CostPerGPUHour-gpu.CostPerGPUHour) > 1e-9 {
			f.Add("gpu_config.cost_per_gpu_hour", fmt.Sprintf("prices come from the catalog (%s: $%.2f per GPU-hour); leave this field out", gpu.DisplayName, gpu.CostPerGPUHour))
		}
		if g.GPUMemoryGB != nil && math.Abs(*g.GPUMemoryGB-gpu.MemoryGB) > 1e-9 {
			f.Add("gpu_config.gpu_memory_gb", fmt.Sprintf("memory comes from the catalog (%s: %g GB); leave this field out", gpu.DisplayName, gpu.MemoryGB))
		}
		price, mem := gpu.CostPerGPUHour, gpu.MemoryGB
		g.GPUType, g.CostPerGPUHour, g.GPUMemoryGB = gpu.GPUType, &price, &mem
	}
	if needDataset && req.DatasetID == "" {
		f.Add("dataset_id", "choose a dataset")
	}
	req.Name = strings.TrimSpace(req.Name)
	f.MaxRunes("name", &req.Name, 200)
	if err := f.Err(); err != nil {
		return nil, err
	}
	var val *store.Dataset
	if id := h.ValidationDatasetID; id != "" {
		v, err := s.Store.DatasetGet(ctx, userID, id)
		if apperr.Is(err, apperr.KindNotFound) {
			return nil, apperr.Validation("validation failed", map[string]string{"hyperparameters.validation_dataset_id": "no dataset of yours has this id"})
		}
		if err != nil {
			return nil, err
		}
		if needDataset && (v.Status != store.DatasetReady || !v.TrainingReady) {
			return nil, apperr.Conflict("validation dataset %q is %s, not ready: wait for validation to finish or fix its errors", v.Name, v.Status)
		}
		val = &v
	}
	req.GPUConfig = g
	r := &resolved{req: req, h: h, model: model, gpu: gpu}
	if req.DatasetID != "" {
		d, err := s.Store.DatasetGet(ctx, userID, req.DatasetID)
		if err != nil {
			return nil, err
		}
		r.dataset = &d
		if r.tokens, r.pre, err = s.tokensOf(ctx, userID, d, model, h.MaxSeqLength); err != nil {
			return nil, err
		}
		if val != nil {
			vt, _, err := s.tokensOf(ctx, userID, *val, model, h.MaxSeqLength)
			if err != nil {
				return nil, err
			}
			r.tokens.withValidation(vt)
		}
	}
	return r, nil
}

// tokensOf is a dataset's token estimate at maxSeq, split into its training
// and held-out shares: from the exact (dataset, model) profile an agent
// counted when there is one, else from its estimated token profile (what the
// trainer keeps after truncation; an exact preflight is queued meanwhile),
// else from its totals.
func (s *Service) tokensOf(ctx context.Context, userID string, d store.Dataset, model catalog.BaseModel, maxSeq int) (*DatasetTokens, *Preflight, error) {
	var exact *validate.TokenProfile
	status := ""
	var err error
	if s.Exact != nil {
		if exact, status, err = s.Exact.Exact(ctx, userID, d, model.ID); err != nil {
			return nil, nil, err
		}
	}
	var pre *Preflight
	if exact != nil {
		pre = preflightFrom(exact, maxSeq, model.ContextLength, true)
	} else {
		// The estimated profile is read only when there is no exact one (the
		// configure page asks on every change: one profile decode per ask).
		prof, err := s.Store.DatasetTokenProfile(ctx, userID, d.ID)
		if err != nil {
			return nil, nil, err
		}
		if pre = preflightFrom(prof, maxSeq, model.ContextLength, false); pre != nil {
			pre.ExactStatus = status
		}
	}
	t := datasetTokens(d, maxSeq)
	if pre != nil {
		t.TrainExamples, t.EvalExamples = pre.TrainingExamplesKept, pre.ValidationExamplesKept
		t.TrainTokens, t.EvalTokens = pre.TokensPerEpoch, pre.ValidationTokens
	}
	return t, pre, nil
}

// withValidation makes t the figures of a job with a separate validation
// dataset v: the trainer then trains on the whole dataset (its held-out
// share too) and evaluates all of v.
func (t *DatasetTokens) withValidation(v *DatasetTokens) {
	t.TrainExamples += t.EvalExamples
	t.TrainTokens += t.EvalTokens
	t.EvalExamples, t.EvalTokens = v.TrainExamples+v.EvalExamples, v.TrainTokens+v.EvalTokens
	t.ValidationDatasetID = v.ID
}

func (s *Service) presetIDs() []string {
	var ids []string
	for _, p := range s.Catalog.Presets {
		ids = append(ids, p.ID)
	}
	return ids
}

// datasetTokens splits the dataset's token estimate between training and
// validation in proportion to their examples, capping each example at the
// maximum sequence length on average.
func datasetTokens(d store.Dataset, maxSeq int) *DatasetTokens {
	t := &DatasetTokens{ID: d.ID, Name: d.Name, Ready: d.Status == store.DatasetReady && d.TrainingReady}
	if d.TotalTrainingPairs != nil {
		t.TrainExamples = *d.TotalTrainingPairs
	}
	if d.TotalValidationPairs != nil {
		t.EvalExamples = *d.TotalValidationPairs
	}
	n := t.TrainExamples + t.EvalExamples
	if d.TotalTokens == nil || n == 0 {
		return t
	}
	per := float64(*d.TotalTokens) / float64(n)
	if maxSeq > 0 && per > float64(maxSeq) {
		per = float64(maxSeq)
	}
	t.TrainTokens = int64(per * float64(t.TrainExamples))
	t.EvalTokens = int64(per * float64(t.EvalExamples))
	return t
}

// Estimate prices a configuration.
func (s *Service) Estimate(ctx context.Context, userID string, req Request) (EstimateResponse, error) {
	r, err := s.resolve(ctx, userID, req, false)
	if err != nil {
		return EstimateResponse{}, err
	}
	return s.estimate(ctx, userID, r)
}

func (s *Service) estimate(ctx context.Context, userID string, r *resolved) (EstimateResponse, error) {
	in := estimate.Input{Hyper: r.h, Model: r.model, GPU: r.gpu, NumGPUs: r.req.GPUConfig.NumGPUs}
	if r.tokens != nil {
		in.TrainTokens, in.EvalTokens, in.Examples = r.tokens.TrainTokens, r.tokens.EvalTokens, r.tokens.TrainExamples
	}
	cal, err := s.Store.JobCalibration(store.AsSystem(ctx), r.gpu.GPUType, r.model.ID)
	if err != nil {
		return EstimateResponse{}, err
	}
	if cal.Runs > 0 {
		in.Calibration = &estimate.Calibration{TokensPerSecond: cal.TokensPerSecond, Runs: cal.Runs, OverheadSeconds: cal.OverheadSeconds}
	}
	res := estimate.Estimate(in)
	b, err := s.budget(ctx, userID, res.EstimatedCost)
	if err != nil {
		return EstimateResponse{}, err
	}
	out := EstimateResponse{Result: res, Hyperparameters: r.h, GPUConfig: r.req.GPUConfig, Dataset: r.tokens, Preflight: r.pre, Budget: b}
	out.Checklist = checklist(r, res, b)
	if s.Agents != nil {
		ok, msg, err := s.Agents.CapableMessage(ctx, r.gpu.GPUType, r.req.GPUConfig.NumGPUs)
		if err != nil {
			return EstimateResponse{}, err
		}
		out.Checklist = append(out.Checklist, Check{ID: "agent_available", OK: ok, Message: msg})
	}
	return out, nil
}

func checklist(r *resolved, res estimate.Result, b Budget) []Check {
	ds := Check{ID: "dataset_ready", Message: "Choose a validated dataset"}
	if r.tokens != nil {
		ds.OK = r.tokens.Ready
		ds.Message = fmt.Sprintf("Dataset %q is ready (%d training, %d validation examples)", r.tokens.Name, r.tokens.TrainExamples, r.tokens.EvalExamples)
		if r.tokens.ValidationDatasetID != "" {
			ds.Message = fmt.Sprintf("Dataset %q is ready (%d training examples, all of it; %d validation examples from the validation dataset)",
				r.tokens.Name, r.tokens.TrainExamples, r.tokens.EvalExamples)
		}
		if !ds.OK {
			ds.Message = fmt.Sprintf("Dataset %q is not ready to train", r.tokens.Name)
		}
	}
	mem := Check{ID: "fits_in_memory", OK: res.Memory.Fits, Message: fmt.Sprintf("Fits in memory (%.1f of %.0f GB)", res.Memory.RequiredGB, res.Memory.AvailableGB)}
	if !res.Memory.Fits {
		mem.Message = res.Memory.Warning
	}
	bud := Check{ID: "within_budget", OK: b.WithinBudget, Message: "No monthly budget set"}
	if b.Remaining != nil {
		bud.Message = fmt.Sprintf("Within budget ($%.2f left this month)", *b.Remaining)
		switch {
		case b.WithinBudget:
		case b.Spent+b.Committed > *b.MonthlyBudget:
			bud.Message = fmt.Sprintf("Over budget: $%.2f spent and $%.2f committed to queued and running jobs already exceed the $%.2f monthly budget", b.Spent, b.Committed, *b.MonthlyBudget)
		default:
			bud.Message = fmt.Sprintf("Over budget: the estimate $%.2f exceeds the $%.2f left this month", res.EstimatedCost, *b.Remaining)
		}
	}
	checks := []Check{ds}
	if p := r.pre; p != nil {
		c := Check{ID: "examples_kept", OK: p.ExamplesDropped == 0 && p.TrainingExamplesKept > 0,
			Message: fmt.Sprintf("Keeps all %d examples whole at %d tokens", p.ExamplesTotal, p.MaxSeqLength)}
		switch {
		case p.TrainingExamplesKept == 0:
			c.Message = fmt.Sprintf("No training example survives %d tokens", p.MaxSeqLength)
		case p.ExamplesDropped > 0:
			c.Message = fmt.Sprintf("Drops %d of %d examples at %d tokens", p.ExamplesDropped, p.ExamplesTotal, p.MaxSeqLength)
		case p.ExamplesTruncated > 0:
			c.Message = fmt.Sprintf("Shortens %d of %d examples at %d tokens (%d keeps all whole)", p.ExamplesTruncated, p.ExamplesTotal, p.MaxSeqLength, p.KeepAllMaxSeqLength)
		}
		checks = append(checks, c)
	}
	return append(checks, mem, bud)
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func (s *Service) budget(ctx context.Context, userID string, cost float64) (Budget, error) {
	st, err := s.Store.UserSettingsGet(ctx, userID)
	if err != nil {
		return Budget{}, err
	}
	b := Budget{MonthlyBudget: st.MonthlyBudget, HardStop: st.BudgetHardStop, WithinBudget: true}
	if b.Spent, err = s.Store.CostSpent(ctx, userID, monthStart(s.Now())); err != nil {
		return b, err
	}
	if b.Committed, err = s.Store.JobCommitted(ctx, userID); err != nil {
		return b, err
	}
	if st.MonthlyBudget != nil {
		rem := math.Max(0, *st.MonthlyBudget-b.Spent-b.Committed)
		b.Remaining = &rem
		// Within budget only when what is spent, what queued and running
		// jobs will cost, and this job all fit: a free job does not make an
		// overspent month "within budget".
		b.WithinBudget = b.Spent+b.Committed+cost <= *st.MonthlyBudget+1e-9
	}
	return b, nil
}

// CreateResponse is the spec's job creation answer.
type CreateResponse struct {
	Job                    store.Job        `json:"job"`
	EstimatedCost          float64          `json:"estimated_cost"`
	EstimatedDurationHours float64          `json:"estimated_duration_hours"`
	Estimate               EstimateResponse `json:"estimate"`
}

// Create validates everything again (never trusting the page) and queues a job.
func (s *Service) Create(ctx context.Context, userID string, req Request) (CreateResponse, error) {
	r, err := s.resolve(ctx, userID, req, true)
	if err != nil {
		return CreateResponse{}, err
	}
	if !r.tokens.Ready {
		return CreateResponse{}, apperr.Conflict("dataset %q is %s, not ready: wait for validation to finish or fix its errors", r.dataset.Name, r.dataset.Status)
	}
	est, err := s.estimate(ctx, userID, r)
	if err != nil {
		return CreateResponse{}, err
	}
	if err := truncationConsent(r.pre, req.AllowTruncation); err != nil {
		return CreateResponse{}, err
	}
	if !est.Memory.Fits {
		return CreateResponse{}, apperr.Validation(est.Memory.Warning, map[string]any{"memory": est.Memory})
	}
	if !est.Budget.WithinBudget && est.Budget.HardStop {
		return CreateResponse{}, &apperr.Error{Kind: apperr.KindConflict,
			Message: fmt.Sprintf("this job's estimate of $%.2f exceeds the $%.2f left of your monthly budget ($%.2f budget, $%.2f spent, $%.2f committed to queued and running jobs)",
				est.EstimatedCost, *est.Budget.Remaining, *est.Budget.MonthlyBudget, est.Budget.Spent, est.Budget.Committed),
			Details: est.Budget}
	}
	eb := est.Result
	hours := est.EstimatedDurationHours
	job, err := s.Store.JobCreate(ctx, store.JobCreateParams{At: s.Now().UTC(), ID: uuid.NewString(), UserID: userID, DatasetID: r.dataset.ID, PresetID: r.req.PresetID,
		Hyperparameters: r.h, GPUConfig: r.req.GPUConfig, Estimate: &eb, TotalEpochs: r.h.NumEpochs, TotalSteps: est.TotalSteps,
		EstimatedTotalCost: math.Round(est.EstimatedCost*100) / 100, EstimatedCompletionAt: s.Now().UTC().Add(time.Duration(hours * float64(time.Hour))),
		BaseModel: r.model.ID, GPUType: r.gpu.GPUType, NumGPUs: r.req.GPUConfig.NumGPUs, Name: r.req.Name})
	if err != nil {
		return CreateResponse{}, err
	}
	return CreateResponse{Job: job, EstimatedCost: est.EstimatedCost, EstimatedDurationHours: hours, Estimate: est}, nil
}

// truncationConsent refuses a job that would train on nothing, or drop
// examples without the caller's allow_truncation.
func truncationConsent(p *Preflight, allow bool) error {
	if p == nil {
		return nil
	}
	if p.TrainingExamplesKept == 0 {
		return apperr.Validation(p.Message, map[string]any{"hyperparameters.max_seq_length": fmt.Sprintf("no training example survives %d tokens; use %d", p.MaxSeqLength, p.KeepAllMaxSeqLength), "preflight": p})
	}
	if p.ExamplesDropped > 0 && !allow {
		return apperr.Validation(p.Message, map[string]any{
			"allow_truncation": fmt.Sprintf("%d of %d examples would be dropped at max_seq_length %d: raise max_seq_length (%d keeps all) or send allow_truncation: true", p.ExamplesDropped, p.ExamplesTotal, p.MaxSeqLength, p.KeepAllMaxSeqLength),
			"preflight":        p})
	}
	return nil
}

// QueueInfo is where a queued job stands: its place among the queued jobs
// for the same GPU type, and whether an online agent can run it.
type QueueInfo struct {
	Position       int    `json:"position"`
	AgentAvailable bool   `json:"agent_available"`
	Message        string `json:"message"`
}

// Queue answers for a queued job (nil otherwise).
func (s *Service) Queue(ctx context.Context, j store.Job) (*QueueInfo, error) {
	if j.Status != store.JobQueued {
		return nil, nil
	}
	pos, err := s.Store.JobQueuePosition(store.AsSystem(ctx), j.ID)
	if err != nil {
		return nil, err
	}
	q := &QueueInfo{Position: pos, AgentAvailable: true}
	if s.Agents != nil {
		if q.AgentAvailable, q.Message, err = s.Agents.CapableMessage(ctx, j.GPUType, j.NumGPUs); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// Cancel cancels a queued job at once or asks the agent to stop a running one.
func (s *Service) Cancel(ctx context.Context, userID, id string) (store.Job, error) {
	return s.Jobs.Cancel(ctx, userID, id)
}

// Retry creates a new job with the configuration of a failed or cancelled one.
func (s *Service) Retry(ctx context.Context, userID, id string) (CreateResponse, error) {
	j, err := s.Store.JobGet(ctx, userID, id)
	if err != nil {
		return CreateResponse{}, err
	}
	if j.Status != store.JobFailed && j.Status != store.JobCancelled {
		return CreateResponse{}, apperr.Conflict("only failed or cancelled jobs can be retried; this one is %s", j.Status)
	}
	hp, err := json.Marshal(j.Hyperparameters)
	if err != nil {
		return CreateResponse{}, fmt.Errorf("encode the job's hyperparameters: %w", err)
	}
	g := j.GPUConfig
	return s.Create(ctx, userID, Request{DatasetID: j.DatasetID, PresetID: j.PresetID, Hyperparameters: hp, Name: j.Name,
		GPUConfig: GPUConfig{GPUType: g.GPUType, NumGPUs: g.NumGPUs},
		// The original job was created with these settings (and its consent).
		AllowTruncation: true})
}
