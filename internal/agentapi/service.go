// Package agentapi is the server side of the agent protocol
// (docs/agent-protocol.md): agent and job tokens, long-poll claims, leases,
// heartbeats with cancellation, idempotent metrics, events, signed upload
// URLs, checkpoints, completion, failure with retries, and the lease worker.
package agentapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

// Options tune leases and polling.
type Options struct {
	Lease        time.Duration // a job whose agent is silent this long is requeued
	Heartbeat    time.Duration // how often agents should heartbeat
	MaxWait      time.Duration // longest claim long-poll
	Poll         time.Duration // claim and lease-check interval
	URLTTL       time.Duration // signed URL lifetime
	MaxRetries   int
	CheckpointAt int // checkpoint every N optimizer steps (0 = about 10 per run)
}

// DefaultOptions are the production settings.
var DefaultOptions = Options{Lease: 60 * time.Second, Heartbeat: 10 * time.Second, MaxWait: 25 * time.Second, Poll: 500 * time.Millisecond,
	URLTTL: 6 * time.Hour, MaxRetries: 3}

// Service implements the protocol.
type Service struct {
	Store   store.Store
	Jobs    *jobs.Service // the lifecycle: every status change goes through it
	Storage storage.Storage
	Catalog *catalog.Catalog
	Log     *slog.Logger
	Now     func() time.Time
	Opts    Options
	// Secret keys the MAC in job tokens, so a token can be checked as
	// genuine even after a newer attempt replaced its stored hash.
	Secret []byte
}

// Token prefixes.
const (
	AgentTokenPrefix = auth.AgentTokenPrefix
	JobTokenPrefix   = "brj_"
)

// CreateAgent registers an agent and returns its token (shown once).
func (s *Service) CreateAgent(ctx context.Context, name string) (string, store.Agent, error) {
	return createAgent(ctx, s.Store, name, s.Now().UTC())
}

// CreateAgent registers an agent in st now (used by `brightrun agents
// create`, whose clock is the wall clock).
func CreateAgent(ctx context.Context, st store.Store, name string) (string, store.Agent, error) {
	return createAgent(ctx, st, name, time.Now().UTC())
}

func createAgent(ctx context.Context, st store.Store, name string, at time.Time) (string, store.Agent, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", store.Agent{}, apperr.Validation("validation failed", map[string]string{"name": "give the agent a name of 1 to 200 characters"})
	}
	tok, hash := NewAgentToken()
	a, err := st.AgentCreate(store.AsSystem(ctx), name, hash, at)
	return tok, a, err
}

// NewAgentToken makes an agent token (bra_…) and the hash the store keeps.
func NewAgentToken() (token, hash string) {
	tok, _, _ := auth.NewAPIToken()
	tok = AgentTokenPrefix + strings.TrimPrefix(tok, auth.TokenPrefix)
	return tok, auth.HashSecret(tok)
}

// newJobToken binds a token to one job and attempt:
// brj_<job>_<attempt>_<nonce><mac>, where mac is an HMAC of job, attempt and
// nonce under the server's secret. The MAC lets Authorize refuse a forged token
// (401) before it says anything about the job, even for a superseded attempt
// whose hash is no longer stored.
func (s *Service) newJobToken(jobID string, attempt int) string {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	n := hex.EncodeToString(nonce)
	return fmt.Sprintf("%s%s_%d_%s%s", JobTokenPrefix, jobID, attempt, n, s.jobTokenMAC(jobID, attempt, n))
}

func (s *Service) jobTokenMAC(jobID string, attempt int, nonce string) string {
	m := hmac.New(sha256.New, s.Secret)
	fmt.Fprintf(m, "brj|%s|%d|%s", jobID, attempt, nonce)
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// genuine reports whether the secret part of a job token carries this
// server's MAC for the job and attempt.
func (s *Service) genuine(jobID string, attempt int, secret string) bool {
	if len(secret) != 64 {
		return false
	}
	want := s.jobTokenMAC(jobID, attempt, secret[:32])
	return hmac.Equal([]byte(want), []byte(secret[32:]))
}

// parseJobToken splits a job token.
func parseJobToken(tok string) (jobID string, attempt int, secret string, ok bool) {
	rest, found := strings.CutPrefix(tok, JobTokenPrefix)
	if !found {
		return "", 0, "", false
	}
	parts := strings.SplitN(rest, "_", 3)
	if len(parts) != 3 {
		return "", 0, "", false
	}
	n, err := strconv.Atoi(parts[1])
	return parts[0], n, parts[2], err == nil
}

// Authorize checks a job token for job id: the job must match (404
// otherwise), a token that is not genuine is a 401 that reveals nothing about
// the job, and a genuine token of an older attempt is a 409 (a newer attempt
// superseded it).
func (s *Service) Authorize(ctx context.Context, id, token string) (store.ExecJob, error) {
	invalid := apperr.Unauthorized("the job token is not valid: send the job token from the claim answer (Authorization: Bearer brj_…)")
	jid, attempt, secret, ok := parseJobToken(token)
	if !ok {
		return store.ExecJob{}, invalid
	}
	if jid != id {
		return store.ExecJob{}, apperr.NotFound("training job")
	}
	genuine := s.genuine(jid, attempt, secret)
	j, err := s.Store.JobExec(store.AsSystem(ctx), id)
	if err != nil {
		if !genuine {
			return store.ExecJob{}, invalid
		}
		return j, err
	}
	if j.JobTokenHash != "" && j.JobTokenHash == auth.HashSecret(token) && j.Attempt == attempt {
		return j, nil // the current attempt (also tokens issued before the MAC existed)
	}
	if !genuine {
		return store.ExecJob{}, invalid
	}
	if attempt < j.Attempt || (attempt == j.Attempt && j.JobTokenHash == "") {
		return j, apperr.Conflict("this attempt was superseded (the job is on attempt %d, status %s): stop working on it", j.Attempt, j.Status)
	}
	return store.ExecJob{}, invalid
}

// Capabilities are what an agent declares it runs (the claim's
// capabilities, kept on the agent's row).
type Capabilities = jobdoc.Capabilities

// AgentInfo describes the agent process.
type AgentInfo struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Hostname string `json:"hostname"`
}

// ClaimRequest is the claim body.
type ClaimRequest struct {
	Agent        AgentInfo    `json:"agent"`
	Capabilities Capabilities `json:"capabilities"`
	WaitSeconds  float64      `json:"wait_seconds"`
}

// FileURL is a signed URL for one file.
type FileURL struct {
	Name        string            `json:"name"`
	URL         string            `json:"url"`
	Method      string            `json:"method,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Size        int64             `json:"size"`
	StoragePath string            `json:"storage_path,omitempty"`
}

// Assignment is a claimed job.
type Assignment struct {
	ID               string  `json:"id"`
	Attempt          int     `json:"attempt"`
	Token            string  `json:"token"`
	LeaseSeconds     float64 `json:"lease_seconds"`
	HeartbeatSeconds float64 `json:"heartbeat_seconds"`
	Config           Config  `json:"config"`
	Dataset          FileURL `json:"dataset"`
	DatasetFormat    string  `json:"dataset_format"`
	Resume           *Resume `json:"resume"`
	// ValidationDataset is evaluated whole instead of the held-out share
	// (absent: hold out validation_share of the dataset).
	ValidationDataset *FileURL `json:"validation_dataset,omitempty"`
}

// Config is an assignment's training configuration: the job's
// hyperparameters (seed defaulted, the validation dataset given as a URL
// instead) plus what the server decides for the run.
type Config struct {
	catalog.Hyperparameters
	// ValidationShare is the share of the dataset held out for validation.
	ValidationShare float64 `json:"validation_share"`
	TrustRemoteCode bool    `json:"trust_remote_code"`
	// CheckpointEverySteps is how often the trainer uploads a checkpoint.
	CheckpointEverySteps int `json:"checkpoint_every_steps"`
	// NumGPUs is how many training processes the agent runs.
	NumGPUs int `json:"num_gpus"`
}

// DefaultSeed is the trainer's seed unless the job asked for one (the
// OpenAI face's seed).
const DefaultSeed = 42

// ClaimAnswer is the claim answer: a job, or null after the wait.
type ClaimAnswer struct {
	Job *Assignment `json:"job"`
}

// Resume is the checkpoint a retry starts from.
type Resume struct {
	Step  int       `json:"step"`
	Files []FileURL `json:"files"`
}

// Claim hands the next matching job to the agent, waiting up to the asked
// time (bounded) for one to appear.
func (s *Service) Claim(ctx context.Context, agent store.Agent, req ClaimRequest) (*Assignment, error) {
	c := req.Capabilities
	if c.GPUType == "" {
		return nil, apperr.Validation("validation failed", map[string]string{"capabilities.gpu_type": "declare the catalog gpu_type this agent runs (\"CPU\" for a CPU agent)"})
	}
	if c.GPUCount == nil {
		one := 1
		c.GPUCount = &one
	}
	if *c.GPUCount < 1 {
		return nil, apperr.Validation("validation failed", map[string]string{"capabilities.gpu_count": fmt.Sprintf("must be 1 or more (got %d): the number of GPUs this agent can use, 1 for a CPU agent", *c.GPUCount)})
	}
	sys := store.AsSystem(ctx)
	if err := s.Store.AgentSeen(sys, agent.ID, c, req.Agent.Version, req.Agent.Hostname, s.Now().UTC()); err != nil {
		return nil, err
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	if wait > s.Opts.MaxWait {
		wait = s.Opts.MaxWait
	}
	deadline := time.Now().Add(wait)
	for {
		a, ok, err := s.claimOnce(sys, agent, c)
		if err != nil || ok {
			return a, err
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

func (s *Service) claimOnce(ctx context.Context, agent store.Agent, c Capabilities) (*Assignment, bool, error) {
	var tok string
	hash := func(id string, attempt int) string {
		tok = s.newJobToken(id, attempt)
		return auth.HashSecret(tok)
	}
	count := *c.GPUCount
	if !c.Distributed {
		count = 1
	}
	cl, ok, err := s.Jobs.Claim(ctx, jobs.ClaimRequest{AgentID: agent.ID, JobID: agent.JobID, GPUType: c.GPUType, GPUCount: count, TokenHash: hash, Lease: s.Opts.Lease})
	if err != nil || !ok {
		return nil, false, err
	}
	e, err := s.Store.JobExec(ctx, cl.Job.ID)
	if err != nil {
		return nil, false, err
	}
	a, err := s.assignment(ctx, e, cl.Dataset, tok)
	if err != nil {
		// Give the job back rather than strand it.
		if rerr := s.Jobs.Requeue(ctx, e, "internal", "could not prepare the assignment: "+err.Error()); rerr != nil {
			s.Log.Error("requeue after a failed assignment", "job", e.ID, "err", rerr)
		}
		return nil, false, err
	}
	s.Log.Info("job claimed", "job", e.ID, "attempt", e.Attempt, "agent", agent.Name)
	return a, true, nil
}

func (s *Service) assignment(ctx context.Context, e store.ExecJob, d store.Dataset, tok string) (*Assignment, error) {
	h := Config{Hyperparameters: e.Hyperparameters, ValidationShare: 0.1}
	if h.Seed == nil {
		seed := int64(DefaultSeed)
		h.Seed = &seed
	}
	m, _ := s.Catalog.Model(e.BaseModel)
	h.TrustRemoteCode = m.TrustRemoteCode
	every := s.Opts.CheckpointAt
	if every <= 0 && e.TotalSteps != nil {
		every = max(5, *e.TotalSteps/10)
	}
	if every <= 0 {
		every = 50
	}
	h.CheckpointEverySteps = every
	h.NumGPUs = max(e.NumGPUs, 1)
	url, err := s.Storage.SignedDownloadURL(ctx, storage.BucketDatasets, d.StoragePath, s.Opts.URLTTL, d.FileName)
	if err != nil {
		return nil, err
	}
	var val *FileURL
	if id := h.ValidationDatasetID; id != "" {
		h.ValidationDatasetID = ""
		v, err := s.Store.DatasetGet(ctx, e.UserID, id) // the job's owner's, checked when the job was created
		switch {
		case apperr.Is(err, apperr.KindNotFound):
			// Deleted since: train as without one rather than strand the job.
			msg := "the validation dataset was deleted: holding out a share of the training dataset instead"
			if err := s.Store.JobEventsAdd(ctx, e.ID, e.Attempt, []store.JobEvent{{Level: "warn", Stage: "downloading", Message: msg}}, s.Now().UTC()); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, fmt.Errorf("validation dataset: %w", err)
		default:
			vu, err := s.Storage.SignedDownloadURL(ctx, storage.BucketDatasets, v.StoragePath, s.Opts.URLTTL, v.FileName)
			if err != nil {
				return nil, err
			}
			val = &FileURL{Name: v.FileName, URL: vu, Size: v.FileSize}
		}
	}
	a := &Assignment{ID: e.ID, Attempt: e.Attempt, Token: tok, LeaseSeconds: s.Opts.Lease.Seconds(), HeartbeatSeconds: s.Opts.Heartbeat.Seconds(),
		Config: h, Dataset: FileURL{Name: d.FileName, URL: url, Size: d.FileSize}, DatasetFormat: d.Format, ValidationDataset: val}
	if cp := e.Checkpoint; cp != nil && len(cp.Files) > 0 {
		r := &Resume{Step: cp.Step}
		for _, f := range cp.Files {
			u, err := s.Storage.SignedDownloadURL(ctx, storage.BucketModels, f.StoragePath, s.Opts.URLTTL, "")
			if err != nil {
				return nil, err
			}
			r.Files = append(r.Files, FileURL{Name: f.Name, URL: u, Size: f.Size})
		}
		a.Resume = r
	}
	return a, nil
}
