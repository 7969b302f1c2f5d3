package e2e

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

type agentRow struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`
	Status      string  `json:"status"`
	GPUType     string  `json:"gpu_type"`
	GPUCount    int     `json:"gpu_count"`
	GPUMemoryGB float64 `json:"gpu_memory_gb"`
	Version     string  `json:"trainer_version"`
	JobsRun     int     `json:"jobs_run"`
}

// TestAgentsFleet: the first account is an operator who lists agents and
// creates and revokes their tokens; another user may not, but learns
// whether an online agent can run a GPU choice (API, estimate checklist,
// queued job's position). The agent is seen through the real protocol.
func TestAgentsFleet(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		op := s.SignUp(t, "operator@example.com")
		u := s.SignUp(t, "user@example.com")
		if r := u.Do("GET", "/api/agents", nil); r.Status != 403 || !strings.Contains(string(r.Body), "operators") {
			t.Fatalf("a non-operator listing agents: %d %s", r.Status, r.Body)
		}
		if r := u.Do("POST", "/api/agents", map[string]string{"name": "x"}); r.Status != 403 {
			t.Fatalf("a non-operator creating an agent: %d %s", r.Status, r.Body)
		}
		if r := op.Do("POST", "/api/agents", map[string]string{"name": " "}); r.Status != 400 {
			t.Fatalf("agent without a name: %d %s", r.Status, r.Body)
		}
		var created struct {
			Agent agentRow
			Token string
		}
		op.MustJSON("POST", "/api/agents", map[string]string{"name": "gpu-box-1"}, 201, &created)
		if created.Agent.Status != "offline" || !strings.HasPrefix(created.Token, "bra_") {
			t.Fatalf("created: %+v", created)
		}
		// The agent connects (a claim with its capabilities; nothing queued for it).
		ac := s.NewClient(t)
		ac.Bearer = created.Token
		ac.MustJSON("POST", "/api/agent/claim", map[string]any{"agent": map[string]string{"name": "gpu-box-1", "version": "9.9.9"},
			"capabilities": map[string]any{"gpu_type": "A100-80GB", "gpu_count": 2, "gpu_memory_gb": 80}, "wait_seconds": 0}, 200, nil)
		var list struct{ Agents []agentRow }
		op.MustJSON("GET", "/api/agents", nil, 200, &list)
		var got *agentRow
		for i := range list.Agents {
			if list.Agents[i].ID == created.Agent.ID {
				got = &list.Agents[i]
			}
		}
		if got == nil || got.Status != "online" || got.GPUType != "A100-80GB" || got.GPUCount != 2 || got.GPUMemoryGB != 80 || got.Version != "9.9.9" || got.Kind != "agent" {
			t.Fatalf("agent as listed: %+v", list.Agents)
		}
		// Everyone may ask whether a GPU choice can run.
		type capability struct {
			Capable bool
			Message string
		}
		var c capability
		u.MustJSON("GET", "/api/agents/capability?gpu_type=A100-80GB&num_gpus=2", nil, 200, &c)
		if !c.Capable {
			t.Fatalf("2× A100 with an online 2× A100 agent: %+v", c)
		}
		u.MustJSON("GET", "/api/agents/capability?gpu_type=A100-80GB&num_gpus=4", nil, 200, &c)
		if c.Capable {
			t.Fatalf("4× A100 with a 2× A100 agent: %+v", c)
		}
		u.MustJSON("GET", "/api/agents/capability?gpu_type=H100-80GB", nil, 200, &c)
		if c.Capable || c.Message != "No agent with H100-80GB is connected: the job will wait in the queue until one is" {
			t.Fatalf("H100 without an H100 agent: %+v", c)
		}
		if r := u.Do("GET", "/api/agents/capability?gpu_type=nope", nil); r.Status != 400 {
			t.Fatalf("unknown GPU: %d %s", r.Status, r.Body)
		}
		// The estimate's checklist and the queued job say so.
		ds := readyDataset(t, u)
		var est estimateView
		h100 := jobReq(ds, mistral, "H100-80GB", 1, nil)
		u.MustJSON("POST", "/api/jobs/estimate", h100, 200, &est)
		found := false
		for _, ch := range est.Checklist {
			if ch.ID == "agent_available" {
				found = !ch.OK && strings.HasPrefix(ch.Message, "No agent with H100-80GB")
			}
		}
		if !found {
			t.Fatalf("checklist: %+v", est.Checklist)
		}
		h100["allow_truncation"] = true
		var job1, job2 struct{ Job struct{ ID string } }
		u.MustJSON("POST", "/api/jobs", h100, 201, &job1)
		u.MustJSON("POST", "/api/jobs", h100, 201, &job2)
		var det struct {
			Queue *struct {
				Position       int  `json:"position"`
				AgentAvailable bool `json:"agent_available"`
			}
		}
		u.MustJSON("GET", "/api/jobs/"+job2.Job.ID, nil, 200, &det)
		if det.Queue == nil || det.Queue.Position != 2 || det.Queue.AgentAvailable {
			t.Fatalf("second queued H100 job: %+v", det.Queue)
		}
		// Revoked: the agent is refused and no longer listed.
		if r := u.Do("DELETE", "/api/agents/"+created.Agent.ID, nil); r.Status != 403 {
			t.Fatalf("a non-operator revoking: %d", r.Status)
		}
		op.MustJSON("DELETE", "/api/agents/"+created.Agent.ID, nil, 200, nil)
		if r := ac.Do("POST", "/api/agent/claim", map[string]any{"capabilities": map[string]any{"gpu_type": "A100-80GB"}, "wait_seconds": 0}); r.Status != 401 {
			t.Fatalf("revoked agent claiming: %d", r.Status)
		}
		if r := op.Do("DELETE", "/api/agents/"+created.Agent.ID, nil); r.Status != 404 {
			t.Fatalf("revoking twice: %d", r.Status)
		}
	})
}

// TestAgentsPageShowsLaunches: an agent a launcher started is listed as
// launched, with the launcher, the engine's id and where its logs are, on
// the API and the page (operators only).
func TestAgentsPageShowsLaunches(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	op := s.SignUp(t, "operator@example.com")
	ds := readyDataset(t, op)
	jobID := insertJobID(t, s, op.UserID, ds, "queued")
	launchA(t, s, jobID)
	var list struct {
		Agents []struct {
			Kind   string
			Launch *struct {
				Launcher   string `json:"launcher"`
				Kind       string `json:"kind"`
				ExternalID string `json:"external_id"`
				LogsURL    string `json:"logs_url"`
			}
		}
	}
	op.MustJSON("GET", "/api/agents?all=true", nil, 200, &list)
	found := false
	for _, a := range list.Agents {
		if a.Launch != nil {
			found = a.Kind == "launched" && a.Launch.Launcher == "hpc" && a.Launch.Kind == "slurm" && a.Launch.ExternalID == "owner-secret-slurm-id" && a.Launch.LogsURL == "file:///logs/x"
		}
	}
	if !found {
		t.Fatalf("launched agent not listed with its launch: %+v", list.Agents)
	}
	page := string(op.Do("GET", "/agents?all=true", nil).Body)
	if !strings.Contains(page, "started by hpc (slurm owner-secret-slurm-id") || !strings.Contains(page, "file:///logs/x") {
		t.Fatalf("agents page lacks the launch")
	}
}
