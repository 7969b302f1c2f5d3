package launchers

import (
	"context"
	"encoding/json"
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
type capabilities struct {
	GPUType  string `json:"gpu_type"`
	GPUCount int    `json:"gpu_count"`
}

type idlePool []capabilities

func idleAgents(online []store.OnlineAgent) idlePool {
	var p idlePool
	for _, a := range online {
		var c capabilities
		if a.Busy || a.JobID != "" || json.Unmarshal(a.Capabilities, &c) != nil {
			continue
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
	var e struct {
		Hours float64 `json:"estimated_duration_hours"`
	}
	if json.Unmarshal(j.Estimate, &e) != nil || e.Hours <= 0 || math.IsNaN(e.Hours) {
		return 0
	}
	return e.Hours
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

// watch moves each open launch on: claimed when its agent took the job,
// ended (and torn down) when the job no longer needs it.
func (s *Service) watch(ctx context.Context, open []store.Launch) {
	states := s.engineStates(ctx, open)
	for _, l := range open {
		if err := s.watchOne(ctx, l, states[l.ID]); err != nil && ctx.Err() == nil {
			s.Log.Error("launch watch", "launch", l.ID, "job", l.JobID, "err", err)
		}
	}
}

// engineStates asks each launcher once about its submitted launches.
func (s *Service) engineStates(ctx context.Context, open []store.Launch) map[string]State {
	byLauncher := map[string][]store.Launch{}
	for _, l := range open {
		if l.ExternalID != "" {
			byLauncher[l.Launcher] = append(byLauncher[l.Launcher], l)
		}
	}
	out := map[string]State{}
	for name, ls := range byLauncher {
		ln := s.Launchers[name]
		if ln == nil {
			continue
		}
		ids := make([]string, len(ls))
		for i, l := range ls {
			ids[i] = l.ExternalID
		}
		cctx, cancel := s.call(ctx)
		st, err := ln.States(cctx, ids)
		cancel()
		if err != nil {
			s.Log.Warn("launcher states", "launcher", name, "err", err)
			continue // unknown this tick: nothing is ended on a failed query
		}
		for _, l := range ls {
			if v, ok := st[l.ExternalID]; ok {
				out[l.ID] = v
			}
		}
	}
	return out
}

func finished(status string) bool {
	return status == store.JobCompleted || status == store.JobFailed || status == store.JobCancelled
}

func (s *Service) watchOne(ctx context.Context, l store.Launch, engine State) error {
	sys := store.AsSystem(ctx)
	j, err := s.Store.JobExec(sys, l.JobID)
	if apperr.Is(err, apperr.KindNotFound) {
		return s.teardown(ctx, l, engine, "the job is gone")
	}
	if err != nil {
		return err
	}
	mine := j.AgentID == l.AgentID && j.Attempt == l.Attempt
	if mine && l.State != store.LaunchClaimed {
		// Its agent claimed the job (perhaps even ended it) since the last tick.
		if err := s.claimed(ctx, &l, j); err != nil {
			return err
		}
	}
	switch {
	case finished(j.Status):
		if l.State == store.LaunchClaimed && engine != StateDone && !s.graceOver(j) {
			return nil // its agent reported the end and is exiting by itself (--exit-after-job)
		}
		return s.teardown(ctx, l, engine, "the job "+j.Status)
	case j.Status == store.JobQueued && j.Attempt == l.Attempt:
		// The attempt this launch was for ran and was requeued (the store
		// clears the job's agent then): its agent lost its lease or reported
		// a retryable failure. The next attempt gets a launch of its own.
		return s.teardown(ctx, l, engine, "the attempt ended and the job was requeued (lease lost or a retryable failure)")
	case l.State == store.LaunchClaimed && !mine:
		return s.teardown(ctx, l, engine, "the job moved to another attempt")
	case !mine && j.Attempt >= l.Attempt:
		return s.teardown(ctx, l, engine, "another agent claimed the job first")
	}
	if l.State == store.LaunchClaimed {
		return nil // its lease decides: a dead agent's job is requeued, then torn down above
	}
	switch {
	case engine == StateDone:
		return s.teardown(ctx, l, engine, "the agent exited before claiming the job")
	case s.Launchers[l.Launcher] == nil:
		return s.teardown(ctx, l, engine, "launcher "+l.Launcher+" is no longer configured")
	case l.State == store.LaunchRequested && s.now().Sub(l.CreatedAt) > 10*time.Minute:
		return s.teardown(ctx, l, engine, "the launch was never submitted (the server stopped while submitting it)")
	case l.SubmittedAt != nil && s.now().After(l.SubmittedAt.Add(time.Duration(l.TimeLimitSeconds)*time.Second)):
		return s.teardown(ctx, l, engine, "its time limit passed before it claimed the job")
	}
	return nil
}

// claimed records the claim of l's agent and writes the launch wait.
func (s *Service) claimed(ctx context.Context, l *store.Launch, j store.ExecJob) error {
	at := s.now()
	switch {
	case j.AttemptStartedAt != nil:
		at = *j.AttemptStartedAt
	case l.Attempt == 1 && j.StartedAt != nil: // the attempt already ended (the store clears its start)
		at = *j.StartedAt
	}
	if err := s.Store.LaunchClaimed(store.AsSystem(ctx), l.ID, at); apperr.Is(err, apperr.KindNotFound) {
		return nil // ended meanwhile by another reconciler
	} else if err != nil {
		return err
	}
	l.State, l.ClaimedAt = store.LaunchClaimed, &at
	wait := at.Sub(l.CreatedAt).Round(time.Second)
	queued := ""
	if l.Attempt == 1 && at.After(j.QueuedAt) {
		queued = fmt.Sprintf(", %s after the job was queued", at.Sub(j.QueuedAt).Round(time.Second))
	}
	return s.event(ctx, j.ID, l.Attempt, "info", fmt.Sprintf("the agent launched on %s claimed the job after a launch wait of %s%s (not billed: billing starts at the claim)",
		l.Launcher, wait, queued))
}

// graceOver reports whether the job ended more than ExitGrace ago.
func (s *Service) graceOver(j store.ExecJob) bool {
	g := s.ExitGrace
	if g <= 0 {
		g = 2 * time.Minute
	}
	return j.CompletedAt == nil || s.now().Sub(*j.CompletedAt) > g
}

// teardown stops the agent on its engine (unless the engine says it is
// done already) and ends the launch (revoking its
// one-job token).
func (s *Service) teardown(ctx context.Context, l store.Launch, engine State, reason string) error {
	sys := store.AsSystem(ctx)
	line := reason
	if ln := s.Launchers[l.Launcher]; ln != nil && l.ExternalID != "" && engine != StateDone {
		cctx, cancel := s.call(ctx)
		err := ln.Stop(cctx, l.ExternalID)
		cancel()
		if err != nil {
			s.Log.Warn("stopping a launched agent", "launcher", l.Launcher, "external_id", l.ExternalID, "err", err)
			line += fmt.Sprintf(" (stopping it failed: %v)", err)
		}
	}
	if err := s.Store.LaunchEnd(sys, store.LaunchEndParams{ID: l.ID, Reason: line, At: s.now()}); apperr.Is(err, apperr.KindNotFound) {
		return nil // another reconciler (a second replica) ended it first
	} else if err != nil {
		return err
	}
	s.Log.Info("launched agent torn down", "launcher", l.Launcher, "external_id", l.ExternalID, "reason", line)
	what := "the launch on " + l.Launcher
	if l.ExternalID != "" {
		what = fmt.Sprintf("the agent launched on %s (%s %s)", l.Launcher, externalNoun(l.Kind), l.ExternalID)
	}
	return s.event(ctx, l.JobID, l.Attempt, "info", fmt.Sprintf("%s ended: %s", what, line))
}
