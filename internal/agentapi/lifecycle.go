package agentapi

import (
	"context"
	"errors"
	"fmt"
	"github.com/brightrun/brightrun/internal/textsafe"
	"math"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
)

// HeartbeatRequest is the heartbeat body.
type HeartbeatRequest struct {
	Stage           string  `json:"stage"`
	Progress        float64 `json:"progress"`
	Epoch           float64 `json:"epoch"`
	Step            int     `json:"step"`
	TotalSteps      int     `json:"total_steps"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	ETASeconds      float64 `json:"eta_seconds"`
}

// Stages an agent may report.
var Stages = []string{"downloading", "preparing", "loading_model", "training", "evaluating", "saving", "uploading"}

// Heartbeat extends the lease and answers whether to cancel.
func (s *Service) Heartbeat(ctx context.Context, j store.ExecJob, r HeartbeatRequest) (HeartbeatAnswer, error) {
	if !contains(Stages, r.Stage) {
		return HeartbeatAnswer{}, apperr.Validation("validation failed", map[string]string{"stage": "use one of " + strings.Join(Stages, ", ")})
	}
	if math.IsNaN(r.Progress) || r.Progress < 0 || r.Progress > 100 {
		return HeartbeatAnswer{}, apperr.Validation("validation failed", map[string]string{"progress": "use 0 to 100"})
	}
	stop, err := s.Jobs.Heartbeat(ctx, j, jobs.Progress{Stage: r.Stage, Progress: r.Progress, Epoch: int(math.Floor(r.Epoch)), Step: r.Step,
		TotalSteps: r.TotalSteps, TokensPerSec: r.TokensPerSecond, ETASeconds: r.ETASeconds, Lease: s.Opts.Lease})
	if err != nil {
		return HeartbeatAnswer{}, err
	}
	return HeartbeatAnswer{Cancel: stop != "", Reason: stop, LeaseSeconds: s.Opts.Lease.Seconds()}, nil
}

// HeartbeatAnswer tells the agent whether to stop. A pause uses the cancel
// path (stop after this step, report "cancelled"); Reason says which it is
// ("cancel" or "pause"), and the server parks a paused job instead of
// cancelling it.
type HeartbeatAnswer struct {
	Cancel       bool    `json:"cancel"`
	Reason       string  `json:"reason,omitempty"`
	LeaseSeconds float64 `json:"lease_seconds"`
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Metrics stores a batch of points (idempotent on step).
func (s *Service) Metrics(ctx context.Context, j store.ExecJob, points []store.MetricPoint) (int, error) {
	if len(points) > 10000 {
		return 0, apperr.TooLarge("send at most 10000 points per batch")
	}
	for i, p := range points {
		if p.Step < 0 {
			return 0, apperr.Validation("validation failed", map[string]string{fmt.Sprintf("points[%d].step", i): "must be ≥ 0"})
		}
		for name, v := range map[string]*float64{"training_loss": p.TrainingLoss, "validation_loss": p.ValidationLoss, "learning_rate": p.LearningRate} {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || math.Abs(*v) > 1e6) {
				return 0, apperr.Validation("validation failed", map[string]string{fmt.Sprintf("points[%d].%s", i, name): "must be a finite number"})
			}
		}
		for name, v := range map[string]*float64{"train_mean_token_accuracy": p.TrainMeanTokenAccuracy, "valid_mean_token_accuracy": p.ValidMeanTokenAccuracy} {
			if v != nil && !(*v >= 0 && *v <= 1) {
				return 0, apperr.Validation("validation failed", map[string]string{fmt.Sprintf("points[%d].%s", i, name): "must be a fraction from 0 to 1"})
			}
		}
	}
	return s.Store.MetricsUpsert(store.AsSystem(ctx), j.ID, j.Attempt, points, s.Now().UTC())
}

// MetricsRequest is the metrics body.
type MetricsRequest struct {
	Points []store.MetricPoint `json:"points"`
}

// AgentEvent is one log line as an agent sends it.
type AgentEvent struct {
	Level     string `json:"level"`
	Stage     string `json:"stage"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"` // RFC 3339, when it happened on the agent
}

// EventsRequest is the events body.
type EventsRequest struct {
	Events []AgentEvent `json:"events"`
}

// CancelledRequest is the cancelled body.
type CancelledRequest struct {
	Step int `json:"step"`
}

// Events appends log lines (trimmed to a sane size). An event keeps the
// agent's time when it is plausible (within the last day, not ahead of the
// server by more than a minute); otherwise it gets the server's.
func (s *Service) Events(ctx context.Context, j store.ExecJob, events []store.JobEvent) error {
	if len(events) > 1000 {
		return apperr.TooLarge("send at most 1000 events per batch")
	}
	now := s.Now().UTC()
	for i := range events {
		if at := events[i].CreatedAt; at.Before(now.Add(-24*time.Hour)) || at.After(now.Add(time.Minute)) {
			events[i].CreatedAt = now
		}
		if events[i].Level == "" {
			events[i].Level = "info"
		}
		if !contains([]string{"debug", "info", "warn", "error"}, events[i].Level) {
			events[i].Level = "info"
		}
		// Agents are untrusted: their text is made storable (valid UTF-8, no
		// NUL or control characters, cut by runes) instead of refused.
		events[i].Message = textsafe.Clean(events[i].Message, 4000)
	}
	return s.Store.JobEventsAdd(store.AsSystem(ctx), j.ID, j.Attempt, events, now)
}

// UploadRequest asks for signed upload URLs.
type UploadRequest struct {
	Kind  string        `json:"kind"` // checkpoint | final
	Step  int           `json:"step"`
	Files []jobdoc.File `json:"files"`
}

func (s *Service) objectPath(j store.ExecJob, kind string, step int, name string) (string, error) {
	clean, err := storage.CleanPath(name)
	if err != nil {
		return "", apperr.Validation("validation failed", map[string]string{"files.name": fmt.Sprintf("%q is not a valid relative file name", name)})
	}
	switch kind {
	case "checkpoint":
		return fmt.Sprintf("%s/%s/checkpoints/step-%d/%s", j.UserID, j.ID, step, clean), nil
	case "final":
		return fmt.Sprintf("%s/%s/adapter/%s", j.UserID, j.ID, clean), nil
	}
	return "", apperr.Validation("validation failed", map[string]string{"kind": "use checkpoint or final"})
}

// Uploads signs one PUT URL per file.
func (s *Service) Uploads(ctx context.Context, j store.ExecJob, r UploadRequest) ([]FileURL, error) {
	if len(r.Files) == 0 || len(r.Files) > 200 {
		return nil, apperr.Validation("validation failed", map[string]string{"files": "list 1 to 200 files"})
	}
	var out []FileURL
	for _, f := range r.Files {
		p, err := s.objectPath(j, r.Kind, r.Step, f.Name)
		if err != nil {
			return nil, err
		}
		if f.Size <= 0 || f.Size > storage.MaxModelSize {
			return nil, apperr.Validation("validation failed", map[string]string{"files.size": fmt.Sprintf("%s: give the size in bytes (1 to %d)", f.Name, storage.MaxModelSize)})
		}
		url, headers, err := s.Storage.SignedUploadURL(ctx, storage.BucketModels, p, storage.UploadOptions{MaxSize: f.Size, ContentType: "application/octet-stream", TTL: s.Opts.URLTTL})
		if err != nil {
			return nil, err
		}
		out = append(out, FileURL{Name: f.Name, URL: url, Method: "PUT", Headers: headers, Size: f.Size, StoragePath: p})
	}
	return out, nil
}

// verify checks each uploaded object exists with its declared size.
func (s *Service) verify(ctx context.Context, j store.ExecJob, kind string, step int, files []jobdoc.File) ([]jobdoc.File, error) {
	if len(files) == 0 {
		return nil, apperr.Validation("validation failed", map[string]string{"files": "list the uploaded files"})
	}
	out := make([]jobdoc.File, 0, len(files))
	for _, f := range files {
		p, err := s.objectPath(j, kind, step, f.Name)
		if err != nil {
			return nil, err
		}
		info, err := s.Storage.Stat(ctx, storage.BucketModels, p)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, apperr.Conflict("%s was not uploaded: PUT it to its upload URL first", f.Name)
		}
		if err != nil {
			return nil, err
		}
		if f.Size != 0 && info.Size != f.Size {
			return nil, apperr.Conflict("%s has %d bytes in storage but %d were declared", f.Name, info.Size, f.Size)
		}
		out = append(out, jobdoc.File{Name: f.Name, Size: info.Size, StoragePath: p})
	}
	return out, nil
}

// CheckpointRequest registers an uploaded checkpoint.
type CheckpointRequest struct {
	Step  int           `json:"step"`
	Files []jobdoc.File `json:"files"`
}

// SetCheckpoint records the resume point after verifying the objects.
func (s *Service) SetCheckpoint(ctx context.Context, j store.ExecJob, r CheckpointRequest) error {
	if r.Step < 0 {
		return apperr.Validation("validation failed", map[string]string{"step": fmt.Sprintf("must be ≥ 0 (got %d): the optimizer step the checkpoint was saved at", r.Step)})
	}
	files, err := s.verify(ctx, j, "checkpoint", r.Step, r.Files)
	if err != nil {
		return err
	}
	sys := store.AsSystem(ctx)
	now := s.Now().UTC()
	if err := s.Store.JobCheckpointSet(sys, j.ID, j.Attempt, jobdoc.Checkpoint{Step: r.Step, Files: files}, now); err != nil {
		return err
	}
	return s.Store.JobEventsAdd(sys, j.ID, j.Attempt, []store.JobEvent{{Level: "info", Stage: "training", Message: fmt.Sprintf("checkpoint saved at step %d", r.Step)}}, now)
}

// FailRequest reports a failed attempt.
type FailRequest struct {
	ErrorClass string `json:"error_class"`
	Message    string `json:"message"`
	Retryable  bool   `json:"retryable"`
	Traceback  string `json:"traceback"`
}

// ErrorClasses the trainer reports.
var ErrorClasses = []string{"data", "config", "model_load", "oom", "internal", "network"}

// Guidance explains what to do about a failure class.
func Guidance(class string) string {
	switch class {
	case "oom":
		return "The GPU ran out of memory. Try a smaller batch size, a shorter max sequence length, gradient checkpointing, or a GPU with more memory."
	case "data":
		return "The dataset could not be used for training; check its validation report and upload a corrected file."
	case "config":
		return "The configuration is invalid for this model; adjust the hyperparameters and start a new job."
	case "model_load":
		return "The base model could not be loaded on the agent; check the model id, the agent's access to it, and its disk space."
	case "agent_lost":
		return "The training agent stopped responding; the job was retried from its last checkpoint."
	}
	return ""
}

// Fail requeues a retryable failure or ends the job.
func (s *Service) Fail(ctx context.Context, j store.ExecJob, r FailRequest) (string, error) {
	if r.ErrorClass == "" {
		r.ErrorClass = "internal"
	}
	if !contains(ErrorClasses, r.ErrorClass) {
		return "", apperr.Validation("validation failed", map[string]string{"error_class": fmt.Sprintf("unknown error class %q: use one of %s", textsafe.Clean(r.ErrorClass, 40), strings.Join(ErrorClasses, ", "))})
	}
	msg := strings.TrimSpace(textsafe.Clean(r.Message, 4000))
	if msg == "" {
		msg = "the trainer failed without a message"
	}
	retry := r.Retryable && r.ErrorClass != "data" && r.ErrorClass != "config" && j.RetryCount < j.MaxRetries
	if retry {
		return store.JobQueued, s.Jobs.Requeue(ctx, j, r.ErrorClass, msg)
	}
	full := msg
	if g := Guidance(r.ErrorClass); g != "" {
		full = msg + "\n\n" + g
	}
	err := s.Jobs.Fail(ctx, j, jobs.Failure{Class: r.ErrorClass, Message: full, Stack: truncate(r.Traceback, 20000),
		Line: "failed (" + r.ErrorClass + "): " + msg, Notice: truncate(full, 400)})
	return store.JobFailed, err
}

// truncate makes agent-sent text storable and cuts it to n runes.
func truncate(s string, n int) string { return textsafe.Clean(s, n) }

// Cancelled ends a job the agent stopped on request: cancelled, or paused
// when the stop was a pause (the agent reports both the same way).
func (s *Service) Cancelled(ctx context.Context, j store.ExecJob, step int) error {
	if j.PauseRequestedAt != nil && j.CancelRequestedAt == nil {
		return s.Jobs.Park(ctx, j, step)
	}
	return s.Jobs.Stopped(ctx, j, step)
}

// ExpireLeases requeues, fails or cancels jobs whose agents went silent.
func (s *Service) ExpireLeases(ctx context.Context) {
	sys := store.AsSystem(ctx)
	now := s.Now().UTC()
	list, err := s.Store.JobExpiredLeases(sys, now, 100)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Error("expired leases", "err", err)
		}
		return
	}
	for _, j := range list {
		var err error
		switch {
		case j.CancelRequestedAt != nil || j.PauseRequestedAt != nil:
			err = s.Cancelled(ctx, j, j.CurrentStep)
		case j.RetryCount < j.MaxRetries:
			err = s.Jobs.Requeue(ctx, j, "agent_lost", fmt.Sprintf("the agent missed its heartbeats for %s (lease expired)", s.Opts.Lease))
			s.Log.Warn("lease expired; job requeued", "job", j.ID, "attempt", j.Attempt)
		default:
			msg := fmt.Sprintf("the training agent stopped responding %d times; giving up", j.RetryCount+1)
			err = s.Jobs.Fail(ctx, j, jobs.Failure{Class: "agent_lost", Message: msg, Line: msg, Notice: msg})
		}
		if err != nil && !apperr.Is(err, apperr.KindConflict) {
			s.Log.Error("expire lease", "job", j.ID, "err", err)
		}
	}
}

// LeaseWorker runs ExpireLeases periodically.
func (s *Service) LeaseWorker(ctx context.Context) {
	t := time.NewTicker(max(s.Opts.Poll, time.Second))
	defer t.Stop()
	for {
		s.ExpireLeases(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
