package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/textsafe"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/google/uuid"
)

// Sources of a request (inference_requests.source).
const (
	SourceV1         = "v1"
	SourcePlayground = "playground"
)

// Limits on what a caller may ask.
const (
	DefaultMaxTokens = 256
	MaxMessages      = 200
	MaxContentRunes  = 100_000
	MaxStops         = 4
)

// Service is the inference use cases shared by /v1 and the playground.
type Service struct {
	Store     store.Store
	Storage   storage.Storage
	Catalog   *catalog.Catalog
	Broker    *Broker
	Log       *slog.Logger
	Now       func() time.Time
	PublicURL string // for the "start an agent" hint
}

// NewService builds the service and its broker.
func NewService(st store.Store, objects storage.Storage, cat *catalog.Catalog, log *slog.Logger, now func() time.Time, publicURL string, opts BrokerOptions) *Service {
	s := &Service{Store: st, Storage: objects, Catalog: cat, Log: log, Now: now, PublicURL: publicURL}
	s.Broker = NewBroker(opts, now, s.record)
	return s
}

// Target is what to generate with: a base model, a user's adapter, or the
// adapter of one of a user's training checkpoints.
type Target struct {
	BaseModel  string
	Model      *store.Model      // nil for the base model
	Checkpoint *CheckpointTarget // an intermediate checkpoint's adapter (Model is nil)
}

// CheckpointTarget is the adapter inside a training job's checkpoint: the
// checkpoint's files also hold the optimizer, scheduler and RNG states
// (docs/agent-protocol.md, "Checkpoints"); only the adapter files are handed
// to the agent.
type CheckpointTarget struct {
	JobID   string
	Step    int
	SavedAt time.Time // when it was registered: a step saved again (a retry) is a new cache version
	Files   []jobdoc.File
}

// cacheKey is the adapter's model_id for the agent's cache: unique per
// job and step, never a model's uuid.
func (c CheckpointTarget) cacheKey() string {
	return fmt.Sprintf("ckpt-%s-step-%d", c.JobID, c.Step)
}

// ChatParams are one chat request.
type ChatParams struct {
	UserID   string
	Target   Target
	Messages []Message
	Params   Params
	Source   string
}

// meta is what the service keeps on a call for its usage record.
type meta struct {
	modelID *string
	source  string
}

// BaseTarget resolves a catalog base model by id.
func (s *Service) BaseTarget(id string) (Target, bool) {
	if _, ok := s.Catalog.Model(id); !ok {
		return Target{}, false
	}
	return Target{BaseModel: id}, true
}

// AdapterTarget resolves the user's trained model by id (404 for anyone
// else's or an unknown one).
func (s *Service) AdapterTarget(ctx context.Context, userID, modelID string) (Target, error) {
	if _, err := uuid.Parse(modelID); err != nil {
		return Target{}, apperr.NotFound("model")
	}
	m, err := s.Store.ModelGet(ctx, userID, modelID)
	if err != nil {
		return Target{}, err
	}
	return Target{BaseModel: m.BaseModel, Model: &m}, nil
}

// DisplayName is the catalog's name for a base model (its id otherwise).
func (s *Service) DisplayName(base string) string {
	if m, ok := s.Catalog.Model(base); ok {
		return m.DisplayName
	}
	return base
}

// Validate checks messages and parameters, filling defaults. Field names are
// the chat API's.
func Validate(msgs []Message, p *Params) error {
	f := apperr.FieldErrors{}
	if len(msgs) == 0 {
		f.Add("messages", "send at least one message")
	}
	if len(msgs) > MaxMessages {
		f.Add("messages", fmt.Sprintf("send at most %d messages", MaxMessages))
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			f.Add(fmt.Sprintf("messages[%d].role", i), "use system, user or assistant")
		}
		if utf8.RuneCountInString(m.Content) > MaxContentRunes {
			f.Add(fmt.Sprintf("messages[%d].content", i), fmt.Sprintf("use at most %d characters", MaxContentRunes))
		}
	}
	if len(msgs) > 0 && msgs[len(msgs)-1].Role == "assistant" {
		f.Add("messages", "end the conversation with a user (or system) message for the model to answer")
	}
	if p.MaxTokens == 0 {
		p.MaxTokens = DefaultMaxTokens
	}
	if p.MaxTokens < 1 || p.MaxTokens > 4096 {
		f.Add("max_tokens", "use 1 to 4096")
	}
	if math.IsNaN(p.Temperature) || p.Temperature < 0 || p.Temperature > 2 {
		f.Add("temperature", "use 0 to 2")
	}
	if math.IsNaN(p.TopP) || p.TopP <= 0 || p.TopP > 1 {
		f.Add("top_p", "use a number above 0 and at most 1")
	}
	if len(p.Stop) > MaxStops {
		f.Add("stop", fmt.Sprintf("send at most %d stop strings", MaxStops))
	}
	for _, st := range p.Stop {
		if st == "" || utf8.RuneCountInString(st) > 100 {
			f.Add("stop", "use stop strings of 1 to 100 characters")
		}
	}
	if p.Stop == nil {
		p.Stop = []string{}
	}
	return f.Err()
}

// Start validates p and queues it; the caller reads the returned call with
// Next until it has a result (and should Cancel it if it stops reading).
func (s *Service) Start(ctx context.Context, p ChatParams) (*Call, error) {
	if err := Validate(p.Messages, &p.Params); err != nil {
		return nil, err
	}
	id := uuid.NewString()
	w := Work{ID: "inf_" + id, BaseModel: p.Target.BaseModel, Messages: p.Messages, Params: p.Params,
		TimeoutSeconds: int(s.Broker.opts.Timeout / time.Second)}
	md := meta{source: p.Source}
	switch m, ck := p.Target.Model, p.Target.Checkpoint; {
	case m != nil:
		a, err := s.adapter(ctx, *m)
		if err != nil {
			return nil, err
		}
		w.Adapter, md.modelID = a, &m.ID
	case ck != nil:
		a, err := s.signAdapter(ctx, ck.cacheKey(), int(ck.SavedAt.Unix()), ck.Files)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, apperr.Conflict("the checkpoint of step %d has no adapter files to serve", ck.Step)
		}
		w.Adapter = a
	}
	c := &Call{ID: w.ID, UserID: p.UserID, BaseModel: w.BaseModel, Work: w, Meta: md}
	if err := s.Broker.Submit(c); err != nil {
		if errors.Is(err, ErrNoAgent) {
			return nil, apperr.Unavailable("no agent serving %s is online; start one with: brightrun-trainer agent --server %s --token bra_… (create a token with `brightrun agents create --name N`)",
				s.DisplayName(w.BaseModel), s.PublicURL).WithCode("no_agent_online")
		}
		if errors.Is(err, ErrTooMany) {
			return nil, apperr.RateLimited("you have %d requests queued or running; wait for one to finish", s.Broker.opts.MaxPerUser).WithCode("rate_limit_exceeded")
		}
		return nil, err
	}
	return c, nil
}

// adapterFile reports whether an artifact file is part of the PEFT adapter
// (not the evaluation or summary the trainer also uploads).
func adapterFile(name string) bool {
	return strings.HasPrefix(name, "adapter_") && !strings.Contains(name, "/")
}

// adapter lists the model's adapter files with signed GET URLs.
func (s *Service) adapter(ctx context.Context, m store.Model) (*Adapter, error) {
	a, err := s.signAdapter(ctx, m.ID, 1, m.Artifacts.Files)
	if err == nil && a == nil {
		err = apperr.Conflict("model %q has no adapter files to serve", m.Name)
	}
	return a, err
}

// signAdapter signs a GET URL, valid as long as the request may live, for
// each adapter file among files (nil when there is none). Sizes come from
// storage as verified when the files were registered; the agent checks
// them after downloading.
func (s *Service) signAdapter(ctx context.Context, key string, version int, files []jobdoc.File) (*Adapter, error) {
	ttl := s.Broker.opts.QueueTimeout + s.Broker.opts.Timeout + time.Minute
	a := &Adapter{ModelID: key, Version: version}
	for _, f := range files {
		if !adapterFile(f.Name) {
			continue
		}
		u, err := s.Storage.SignedDownloadURL(ctx, storage.BucketModels, f.StoragePath, ttl, f.Name)
		if err != nil {
			return nil, err
		}
		a.Files = append(a.Files, AdapterFile{Name: f.Name, URL: u, Size: f.Size})
	}
	if len(a.Files) == 0 {
		return nil, nil
	}
	return a, nil
}

// Claim is an agent's long-poll for work.
func (s *Service) Claim(ctx context.Context, agent store.Agent, req ClaimRequest) (*Work, error) {
	f := apperr.FieldErrors{}
	if len(req.BaseModels) == 0 {
		f.Add("base_models", `list the base models this agent serves (["*"] for any)`)
	}
	if strings.TrimSpace(req.Capabilities.GPUType) == "" {
		f.Add("capabilities.gpu_type", `send the catalog's gpu_type ("CPU" for a CPU agent)`)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	c := s.Broker.Claim(ctx, agent.ID, req, wait)
	if c == nil {
		return nil, nil
	}
	w := c.Work
	return &w, nil
}

// Post relays one stream post from agent.
func (s *Service) Post(agent store.Agent, id string, p StreamPost) (StreamAnswer, error) {
	if p.Seq == nil || *p.Seq < 0 {
		return StreamAnswer{}, apperr.Validation("validation failed", map[string]string{"seq": "send the post's sequence number (0, 1, 2, …)"})
	}
	if p.Done && p.Error == nil {
		switch p.FinishReason {
		case "stop", "length", "cancelled":
		default:
			return StreamAnswer{}, apperr.Validation("validation failed", map[string]string{"finish_reason": "use stop, length or cancelled"})
		}
	}
	// Generated text is untrusted: what a model emits may hold NUL or
	// control characters that pages should not show and that the caller could
	// not send back (a small random model emits them).
	p.Text = textsafe.Clean(p.Text, 0)
	if p.Error != nil {
		p.Error.Message = textsafe.Clean(p.Error.Message, 4000)
	}
	return s.Broker.Post(agent.ID, id, p)
}

// record writes the usage row and the cost record of a finished call.
func (s *Service) record(o Outcome) {
	md, _ := o.Call.Meta.(meta)
	tokens := o.Usage.PromptTokens + o.Usage.CompletionTokens
	price := 0.0
	if g, ok := s.Catalog.GPU(o.GPUType); ok {
		price = g.InferenceCostPerMillionTokens
	}
	amount := float64(tokens) * price / 1e6
	r := store.InferenceRequest{ID: strings.TrimPrefix(o.Call.ID, "inf_"), UserID: o.Call.UserID, BaseModel: o.Call.BaseModel, ModelID: md.modelID,
		Source: md.source, Status: o.Status, PromptTokens: o.Usage.PromptTokens, CompletionTokens: o.Usage.CompletionTokens,
		CreatedAt: o.Created, FinishedAt: o.Ended}
	if r.Source == "" {
		r.Source = SourceV1
	}
	r.FinishReason = strPtr(o.FinishReason)
	r.Error = strPtr(o.Error)
	r.GPUType = strPtr(o.GPUType)
	total := o.Ended.Sub(o.Created).Seconds()
	r.TotalSeconds = &total
	if !o.Claimed.IsZero() {
		q := o.Claimed.Sub(o.Created).Seconds()
		r.QueueSeconds = &q
	}
	if !o.FirstText.IsZero() {
		ft := o.FirstText.Sub(o.Created).Seconds()
		r.FirstTokenSeconds = &ft
	}
	details := costdoc.Inference{Model: o.Call.BaseModel, ModelID: md.modelID, GPUType: o.GPUType, PromptTokens: o.Usage.PromptTokens,
		CompletionTokens: o.Usage.CompletionTokens, PricePerMillionTokens: price, AmountExact: amount, Source: r.Source}
	err := s.Store.InferenceRecord(store.AsSystem(context.Background()), store.InferenceRecordParams{Request: r,
		Cost: store.InferenceCost{Amount: amount, Details: &details, BillingPeriod: o.Ended.UTC().Format("2006-01-02")}})
	if err != nil {
		s.Log.Error("inference usage not recorded", "request", o.Call.ID, "err", err)
	}
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
