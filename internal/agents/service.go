// Package agents is the trainer-agent fleet as users see it: the agents page
// and GET /api/agents for operators (name, online or offline, GPUs, trainer
// version, current job, jobs run; create and revoke agent tokens), and for
// everyone whether an online agent can run a GPU choice (the configure
// checklist and the queued job page).
package agents

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// Agent statuses.
const (
	StatusOnline  = "online"  // seen recently, idle
	StatusBusy    = "busy"    // holds a job whose lease is live
	StatusOffline = "offline" // not seen within OnlineWithin
)

// DefaultOnlineWithin: an idle agent long-polls claims (at most 25 s each),
// so one not seen for 90 s has stopped.
const DefaultOnlineWithin = 90 * time.Second

// Service implements the use cases.
type Service struct {
	Store        store.Store
	Now          func() time.Time
	OnlineWithin time.Duration
	// Hidden: offline agents not seen (or created) within this long are
	// left out of the default list (every server start registers a new
	// local agent); ?all=true shows them.
	Hidden time.Duration
}

// Agent is one row of the agents page and GET /api/agents.
type Agent struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Kind        string      `json:"kind"` // "local" (the server's own CPU agent) or "agent"
	Status      string      `json:"status"`
	GPUType     string      `json:"gpu_type,omitempty"`
	GPUCount    int         `json:"gpu_count,omitempty"`
	GPUMemoryGB float64     `json:"gpu_memory_gb,omitempty"`
	Version     string      `json:"trainer_version,omitempty"`
	Hostname    string      `json:"hostname,omitempty"`
	LastSeenAt  *time.Time  `json:"last_seen_at"`
	CreatedAt   time.Time   `json:"created_at"`
	CurrentJob  *CurrentJob `json:"current_job"`
	JobsRun     int         `json:"jobs_run"`
	// Launch is set for an ephemeral agent a launcher started (Kind
	// "launched"): where it runs and where its logs are.
	Launch *Launch `json:"launch,omitempty"`
}

// Launch is what the agents page shows of an open launch.
type Launch struct {
	Launcher   string `json:"launcher"`
	Kind       string `json:"kind"` // slurm | kubernetes
	ExternalID string `json:"external_id"`
	LogsURL    string `json:"logs_url"` // as the launcher reports it
	LogsLink   string `json:"-"`        // LogsURL when it is http(s): the page links it
	State      string `json:"state"`
}

// launchView is an open launch as the agents page shows it.
func launchView(l store.Launch) Launch {
	v := Launch{Launcher: l.Launcher, Kind: l.Kind, ExternalID: l.ExternalID, LogsURL: l.LogsURL, State: l.State}
	if u, err := url.Parse(l.LogsURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		v.LogsLink = l.LogsURL
	}
	return v
}

// CurrentJob is what an agent is running. The job belongs to some user:
// operators see its status and stage, not its data.
type CurrentJob struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Stage  string `json:"stage"`
}

func (s *Service) online() time.Duration {
	if s.OnlineWithin > 0 {
		return s.OnlineWithin
	}
	return DefaultOnlineWithin
}

func (s *Service) view(a store.AgentSummary, now time.Time) Agent {
	v := Agent{ID: a.ID, Name: a.Name, Kind: "agent", Version: a.Version, Hostname: a.Hostname, LastSeenAt: a.LastSeenAt, CreatedAt: a.CreatedAt, JobsRun: a.JobsRun, Status: StatusOffline}
	if a.Name == "local" {
		v.Kind = "local"
	}
	if c := a.Capabilities; c != nil {
		v.GPUType, v.GPUMemoryGB = c.GPUType, c.GPUMemoryGB
		if c.GPUCount != nil {
			v.GPUCount = *c.GPUCount
		}
	}
	if a.LastSeenAt != nil && now.Sub(*a.LastSeenAt) <= s.online() {
		v.Status = StatusOnline
	}
	if a.CurrentJobID != nil && a.CurrentJobLease != nil && a.CurrentJobLease.After(now) {
		v.Status = StatusBusy
		v.CurrentJob = &CurrentJob{ID: *a.CurrentJobID, Status: a.CurrentJobStatus, Stage: a.CurrentJobStage}
	}
	return v
}

func (s *Service) all(ctx context.Context) ([]Agent, error) {
	rows, err := s.Store.AgentList(store.AsSystem(ctx))
	if err != nil {
		return nil, err
	}
	open, err := s.Store.LaunchesOpen(store.AsSystem(ctx))
	if err != nil {
		return nil, err
	}
	launched := make(map[string]Launch, len(open))
	for _, l := range open {
		launched[l.AgentID] = launchView(l)
	}
	now := s.Now().UTC()
	out := make([]Agent, 0, len(rows))
	for _, a := range rows {
		v := s.view(a, now)
		if l, ok := launched[a.ID]; ok {
			v.Kind, v.Launch = "launched", &l
		}
		out = append(out, v)
	}
	rank := map[string]int{StatusBusy: 0, StatusOnline: 1, StatusOffline: 2}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Status] < rank[out[j].Status] })
	return out, nil
}

// IsOperator reports whether the user is an operator.
func (s *Service) IsOperator(ctx context.Context, userID string) (bool, error) {
	return s.Store.OperatorIs(store.AsSystem(ctx), userID)
}

func (s *Service) requireOperator(ctx context.Context, userID string) error {
	ok, err := s.IsOperator(ctx, userID)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.Forbidden("only operators manage trainer agents (the first account is one; `brightrun users create --admin` makes more); the configure page says whether an agent can run your GPU choice")
	}
	return nil
}

// List is the operator's agent list; all includes long-gone agents.
func (s *Service) List(ctx context.Context, userID string, all bool) ([]Agent, error) {
	if err := s.requireOperator(ctx, userID); err != nil {
		return nil, err
	}
	list, err := s.all(ctx)
	if err != nil || all {
		return list, err
	}
	hidden := s.Hidden
	if hidden <= 0 {
		hidden = 24 * time.Hour
	}
	cutoff := s.Now().UTC().Add(-hidden)
	out := list[:0]
	for _, a := range list {
		last := a.CreatedAt
		if a.LastSeenAt != nil && a.LastSeenAt.After(last) {
			last = *a.LastSeenAt
		}
		if a.Status != StatusOffline || last.After(cutoff) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Created is a new agent and its token (shown once).
type Created struct {
	Agent Agent  `json:"agent"`
	Token string `json:"token"`
}

// Create registers an agent and returns its token.
func (s *Service) Create(ctx context.Context, userID, name string) (Created, error) {
	if err := s.requireOperator(ctx, userID); err != nil {
		return Created{}, err
	}
	tok, a, err := agentapi.CreateAgent(ctx, s.Store, strings.TrimSpace(name))
	if err != nil {
		return Created{}, err
	}
	return Created{Agent: s.view(store.AgentSummary{Agent: a}, s.Now().UTC()), Token: tok}, nil
}

// Revoke revokes an agent's token: its next call is refused.
func (s *Service) Revoke(ctx context.Context, userID, id string) error {
	if err := s.requireOperator(ctx, userID); err != nil {
		return err
	}
	return s.Store.AgentRevoke(store.AsSystem(ctx), id, s.Now().UTC())
}

// Capability says whether an online agent can run count × gpuType.
type Capability struct {
	GPUType string `json:"gpu_type"`
	Count   int    `json:"num_gpus"`
	Capable bool   `json:"capable"`
	// Online counts the online agents (any GPU).
	Online int `json:"online"`
}

// Capable answers for everyone; it names no agent.
func (s *Service) Capable(ctx context.Context, gpuType string, count int) (Capability, error) {
	list, err := s.all(ctx)
	c := Capability{GPUType: gpuType, Count: count}
	for _, a := range list {
		if a.Status == StatusOffline {
			continue
		}
		c.Online++
		if a.GPUType == gpuType && a.GPUCount >= count {
			c.Capable = true
		}
	}
	return c, err
}

// Message is the capability in words.
func (c Capability) Message() string {
	if c.Capable {
		return fmt.Sprintf("An online agent can run %d× %s", c.Count, c.GPUType)
	}
	if c.Count > 1 {
		return fmt.Sprintf("No agent with %d× %s is connected: the job will wait in the queue until one is", c.Count, c.GPUType)
	}
	return fmt.Sprintf("No agent with %s is connected: the job will wait in the queue until one is", c.GPUType)
}

// CapableMessage is Capable in words, for the configure checklist.
func (s *Service) CapableMessage(ctx context.Context, gpuType string, count int) (bool, string, error) {
	c, err := s.Capable(ctx, gpuType, count)
	return c.Capable, c.Message(), err
}
