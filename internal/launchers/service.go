package launchers

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// Service is the reconciler: each Tick launches agents for queued jobs that
// no capable idle agent can take, and tears down launched agents whose job
// no longer needs them. All its state is in the store (launches), so a
// restarted server picks up where the last one stopped.
type Service struct {
	Store  store.Store
	Log    *slog.Logger
	Now    func() time.Time
	Config FileConfig
	// Launchers are the configured launchers by Settings.Name.
	Launchers map[string]Launcher
	PublicURL string // the default server URL for agents
	// OnlineWindow: an agent that called claim this recently is online
	// (default 90 s: agents long-poll for at most 30 s).
	OnlineWindow time.Duration
	// CallTimeout bounds each engine call (default 60 s).
	CallTimeout time.Duration
	// ExitGrace is how long an agent that ran a job that has ended may take
	// to exit by itself before it is stopped (default 2 min).
	ExitGrace time.Duration

	mu    sync.Mutex
	noted map[string]string // job → the last "not launched" line written, so it is written once
}

// MaxUnclaimedLaunches is how many launches of one attempt may end before
// their agent claims the job; then the reconciler stops and says why.
const MaxUnclaimedLaunches = 3

func (s *Service) now() time.Time { return s.Now().UTC() }

// Worker runs Tick every poll period until ctx ends.
func (s *Service) Worker(ctx context.Context) {
	t := time.NewTicker(s.Config.Poll())
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("launchers", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick reconciles once: watch every open launch, then launch for queued jobs.
func (s *Service) Tick(ctx context.Context) error {
	sys := store.AsSystem(ctx)
	open, err := s.Store.LaunchesOpen(sys)
	if err != nil {
		return err
	}
	s.watch(ctx, open)
	if open, err = s.Store.LaunchesOpen(sys); err != nil {
		return err
	}
	openJobs, running := map[string]bool{}, map[string]int{}
	for _, l := range open {
		openJobs[l.JobID] = true
		running[l.Launcher]++
	}
	queued, err := s.Store.JobsQueued(sys, 500)
	if err != nil {
		return err
	}
	if len(queued) == 0 {
		return nil
	}
	window := s.OnlineWindow
	if window <= 0 {
		window = 90 * time.Second
	}
	online, err := s.Store.AgentsOnline(sys, s.now().Add(-window))
	if err != nil {
		return err
	}
	idle := idleAgents(online)
	for _, j := range queued {
		if openJobs[j.ID] || idle.take(j) {
			continue
		}
		if err := s.launch(ctx, j, running); err != nil && ctx.Err() == nil {
			s.Log.Error("launch", "job", j.ID, "err", err)
		}
	}
	return nil
}

// capabilities is the part of an agent's declared capabilities that matters here.
// capabilities are an idle agent's GPU type and count.
type capabilities struct {
	GPUType  string
	GPUCount int
}

type idlePool []capabilities

func idleAgents(online []store.OnlineAgent) idlePool {
	var p idlePool
	for _, a := range online {
		if a.Busy || a.JobID != "" || a.Capabilities == nil {
			continue
		}
		c := capabilities{GPUType: a.Capabilities.GPUType}
		if n := a.Capabilities.GPUCount; n != nil {
			c.GPUCount = *n
		}
		p = append(p, c)
	}
	return p
}

// take reserves an idle agent that can run j (so two queued jobs never
// count on the same one).
func (p *idlePool) take(j store.ExecJob) bool {
	for i, c := range *p {
		if c.GPUType == j.GPUType && c.GPUCount >= max(j.NumGPUs, 1) {
			*p = append((*p)[:i], (*p)[i+1:]...)
			return true
		}
	}
	return false
}

// estimateHours reads the estimated duration the job was created with.
func estimateHours(j store.ExecJob) float64 {
	e := j.Estimate
	if e == nil || e.EstimatedDurationHours <= 0 || math.IsNaN(e.EstimatedDurationHours) {
		return 0
	}
	return e.EstimatedDurationHours
}

// TimeLimit is the engine time limit for j on l: the estimate × the
// safety factor, at least MinMinutes; ok is false when it exceeds l's
// MaxHours (or the job has no estimate and MaxHours is the only bound).
func (c FileConfig) TimeLimit(j store.ExecJob, l Settings) (time.Duration, bool) {
	h := estimateHours(j)
	if h == 0 {
		return time.Duration(l.MaxHours * float64(time.Hour)), true
	}
	limit := max(h*c.SafetyFactor, c.MinMinutes/60)
	d := time.Duration(math.Ceil(limit*60-1e-6)) * time.Minute // whole minutes, without float noise
	return d, limit <= l.MaxHours
}

// launch starts an agent for j on the first launcher that serves its GPU
// type and has room, unless the job's recent launches say to wait.
func (s *Service) launch(ctx context.Context, j store.ExecJob, running map[string]int) error {
	sys := store.AsSystem(ctx)
	now := s.now()
	attempt := j.Attempt + 1
	past, err := s.Store.LaunchList(sys, store.LaunchListParams{JobID: j.ID, Limit: 50})
	if err != nil {
		return err
	}
	unclaimed := 0
	for _, l := range past {
		if l.Attempt == attempt && l.ClaimedAt == nil {
			unclaimed++
		}
	}
	if unclaimed >= MaxUnclaimedLaunches {
		return s.note(ctx, j, fmt.Sprintf("not launching another agent: %d launched agents ended before claiming the job; check the launcher's logs or start an agent by hand", unclaimed))
	}
	if len(past) > 0 && past[0].EndedAt != nil && past[0].Attempt == attempt &&
		now.Sub(*past[0].EndedAt) < time.Duration(s.Config.RetryAfterSeconds*float64(time.Second)) {
		return nil // back off after a failed or unclaimed launch
	}
	var chosen *Settings
	var limit time.Duration
	var why string
	for i := range s.Config.Launchers {
		set := &s.Config.Launchers[i]
		if _, ok := set.GPUTypes[j.GPUType]; !ok || s.Launchers[set.Name] == nil {
			continue
		}
		d, ok := s.Config.TimeLimit(j, *set)
		switch {
		case !ok:
			why = fmt.Sprintf("not launching an agent on %s: the estimate × %.1f needs %s, above its %g h limit per job; start an agent by hand",
				set.Name, s.Config.SafetyFactor, d, set.MaxHours)
		case running[set.Name] >= set.MaxAgents:
			why = "" // full: wait quietly for a slot
		default:
			chosen, limit = set, d
		}
		if chosen != nil {
			break
		}
	}
	if chosen == nil {
		if why != "" {
			return s.note(ctx, j, why)
		}
		return nil
	}
	running[chosen.Name]++
	return s.start(ctx, j, *chosen, limit)
}

// note writes a "not launched" line to the job's event log once.
func (s *Service) note(ctx context.Context, j store.ExecJob, line string) error {
	s.mu.Lock()
	if s.noted == nil {
		s.noted = map[string]string{}
	}
	same := s.noted[j.ID] == line
	s.noted[j.ID] = line
	s.mu.Unlock()
	if same {
		return nil
	}
	return s.event(ctx, j.ID, j.Attempt, "warn", line)
}

func (s *Service) event(ctx context.Context, jobID string, attempt int, level, msg string) error {
	return s.Store.JobEventsAdd(store.AsSystem(ctx), jobID, attempt, []store.JobEvent{{Level: level, Message: msg}}, s.now())
}

func (s *Service) call(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.CallTimeout
	if d <= 0 {
		d = time.Minute
	}
	return context.WithTimeout(ctx, d)
}

// start creates the launch and its one-job agent, then submits it.
func (s *Service) start(ctx context.Context, j store.ExecJob, set Settings, limit time.Duration) error {
	sys := store.AsSystem(ctx)
	ln := s.Launchers[set.Name]
	tok, hash := agentapi.NewAgentToken()
	id := uuid.NewString()
	name := fmt.Sprintf("launch-%s-%s-a%d", set.Name, j.ID[:8], j.Attempt+1)
	l, err := s.Store.LaunchCreate(sys, store.LaunchCreateParams{ID: id, JobID: j.ID, Attempt: j.Attempt + 1, Launcher: set.Name, Kind: ln.Kind(),
		AgentName: name, TokenHash: hash, TimeLimitSeconds: int(limit.Seconds()), At: s.now()})
	if apperr.Is(err, apperr.KindConflict) {
		return nil // another reconciler (a second replica) launched for it just now
	}
	if err != nil {
		return err
	}
	server := set.ServerURL
	if server == "" {
		server = s.PublicURL
	}
	gpus := max(j.NumGPUs, 1)
	if err := s.event(ctx, j.ID, j.Attempt, "info", fmt.Sprintf("no idle agent for %d × %s: launching one on %s (%s), time limit %s",
		gpus, j.GPUType, set.Name, ln.Kind(), limit)); err != nil {
		return err
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	h, err := ln.Submit(cctx, Spec{LaunchID: id, JobID: j.ID, Attempt: l.Attempt, AgentName: name, Token: tok, ServerURL: server,
		GPUType: j.GPUType, GPUCount: gpus, TimeLimit: limit})
	now := s.now()
	if err != nil {
		s.Log.Warn("launch failed", "job", j.ID, "launcher", set.Name, "err", err)
		if eerr := s.Store.LaunchEnd(sys, store.LaunchEndParams{ID: id, Reason: "submit failed: " + err.Error(), At: now}); eerr != nil {
			return eerr
		}
		return s.event(ctx, j.ID, j.Attempt, "warn", fmt.Sprintf("launching an agent on %s failed: %v; trying again in %.0f s",
			set.Name, err, s.Config.RetryAfterSeconds))
	}
	if err := s.Store.LaunchSubmitted(sys, store.LaunchSubmittedParams{ID: id, ExternalID: h.ExternalID, LogsURL: h.LogsURL, At: now}); err != nil {
		return err
	}
	s.Log.Info("agent launched", "job", j.ID, "launcher", set.Name, "external_id", h.ExternalID)
	line := fmt.Sprintf("launched an agent on %s: %s %s", set.Name, externalNoun(ln.Kind()), h.ExternalID)
	if h.LogsURL != "" {
		line += "; logs: " + h.LogsURL
	}
	return s.event(ctx, j.ID, j.Attempt, "info", line)
}

func externalNoun(kind string) string {
	switch kind {
	case "slurm":
		return "Slurm job"
	case "kubernetes":
		return "Kubernetes Job"
	}
	return kind + " id"
}
