package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

type claimed struct {
	ID, Token string
	Attempt   int
}

func claimHTTP(t *testing.T, s *testserver.Server, agentTok, gpu string) (claimed, bool) {
	t.Helper()
	c := s.NewClient(t)
	c.Bearer = agentTok
	var out struct {
		Job *claimed `json:"job"`
	}
	c.MustJSON("POST", "/api/agent/claim", map[string]any{"agent": map[string]string{"name": "t"}, "capabilities": map[string]any{"gpu_type": gpu, "gpu_count": 1}, "wait_seconds": 0}, 200, &out)
	if out.Job == nil {
		return claimed{}, false
	}
	return *out.Job, true
}

// TestAgentProtocolTokensAndFailures drives the protocol over HTTP without a
// trainer: job tokens are scoped to their job and attempt, metrics posted
// twice are stored once, data errors are not retried, retryable ones are.
// claimedJob signs up email, queues one CPU job for a new dataset and claims
// it over HTTP: the user's client, the claim, and a client holding its job
// token.
func claimedJob(t *testing.T, s *testserver.Server, email string) (*testserver.Client, claimed, *testserver.Client) {
	t.Helper()
	u := s.SignUp(t, email)
	d := storetest.NewDataset(t, s.App.Store, u.UserID, "claimed")
	storetest.NewJob(t, s.App.Store, u.UserID, d.ID, "CPU")
	agentTok, _, err := s.App.Agents.CreateAgent(context.Background(), "claim-agent")
	if err != nil {
		t.Fatal(err)
	}
	j, ok := claimHTTP(t, s, agentTok, "CPU")
	if !ok {
		t.Fatal("no job claimed")
	}
	ag := s.NewClient(t)
	ag.Bearer = j.Token
	return u, j, ag
}

func TestAgentProtocolTokensAndFailures(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		u := s.SignUp(t, "proto@example.com")
		st := s.App.Store
		d := storetest.NewDataset(t, st, u.UserID, "proto")
		storetest.NewJob(t, st, u.UserID, d.ID, "CPU")
		storetest.NewJob(t, st, u.UserID, d.ID, "CPU")
		agentTok, _, err := s.App.Agents.CreateAgent(context.Background(), "proto-agent")
		if err != nil {
			t.Fatal(err)
		}
		bad := s.NewClient(t)
		bad.Bearer = "bra_not-a-real-token"
		if r := bad.Do("POST", "/api/agent/claim", map[string]any{"capabilities": map[string]any{"gpu_type": "CPU"}}); r.Status != 401 {
			t.Fatalf("bad agent token: %d", r.Status)
		}
		// Bad capabilities are refused, naming the field.
		ac := s.NewClient(t)
		ac.Bearer = agentTok
		for _, n := range []int{0, -2} {
			r := ac.Do("POST", "/api/agent/claim", map[string]any{"capabilities": map[string]any{"gpu_type": "CPU", "gpu_count": n}, "wait_seconds": 0})
			if msg, det := r.ErrorBody(); r.Status != 400 || det["capabilities.gpu_count"] == nil {
				t.Fatalf("gpu_count %d: %d %s %v", n, r.Status, msg, det)
			}
		}
		if _, ok := claimHTTP(t, s, agentTok, "H100-80GB"); ok {
			t.Fatal("an H100 agent claimed a CPU job")
		}
		a, _ := claimHTTP(t, s, agentTok, "CPU")
		b, _ := claimHTTP(t, s, agentTok, "CPU")
		if a.ID == b.ID || a.Attempt != 1 || !strings.HasPrefix(a.Token, "brj_") {
			t.Fatalf("claims: %+v %+v", a, b)
		}
		ag := s.NewClient(t)
		ag.Bearer = a.Token
		// A job token cannot touch another job.
		if r := ag.Do("POST", "/api/agent/jobs/"+b.ID+"/heartbeat", map[string]any{"stage": "training"}); r.Status != 404 {
			t.Fatalf("token of job A on job B: %d %s", r.Status, r.Body)
		}
		// Metrics posted twice are stored once.
		pts := map[string]any{"points": []map[string]any{{"step": 1, "epoch": 0.5, "training_loss": 2.5, "learning_rate": 1e-4}, {"step": 2, "epoch": 1, "training_loss": 2.1, "learning_rate": 1e-4}}}
		for i := 0; i < 2; i++ {
			ag.MustJSON("POST", "/api/agent/jobs/"+a.ID+"/metrics", pts, 200, nil)
		}
		var detail struct {
			Metrics []store.MetricPoint `json:"metrics"`
		}
		u.MustJSON("GET", "/api/jobs/"+a.ID, nil, 200, &detail)
		if len(detail.Metrics) != 2 {
			t.Fatalf("metrics stored %d times", len(detail.Metrics))
		}
		var hb struct{ Cancel bool }
		ag.MustJSON("POST", "/api/agent/jobs/"+a.ID+"/heartbeat", map[string]any{"stage": "training", "progress": 50, "epoch": 1.5, "step": 2, "total_steps": 4}, 200, &hb)
		if hb.Cancel {
			t.Fatal("cancel without a request")
		}
		u.MustJSON("POST", "/api/jobs/"+a.ID+"/cancel", nil, 200, nil)
		ag.MustJSON("POST", "/api/agent/jobs/"+a.ID+"/heartbeat", map[string]any{"stage": "training", "progress": 50, "step": 2}, 200, &hb)
		if !hb.Cancel {
			t.Fatal("the heartbeat answer must carry the cancellation")
		}
		ag.MustJSON("POST", "/api/agent/jobs/"+a.ID+"/cancelled", map[string]any{"step": 2}, 200, nil)
		// A retryable failure requeues; the old attempt's token then stops working.
		bg := s.NewClient(t)
		bg.Bearer = b.Token
		var res struct{ Status string }
		bg.MustJSON("POST", "/api/agent/jobs/"+b.ID+"/fail", map[string]any{"error_class": "internal", "message": "boom", "retryable": true}, 200, &res)
		if res.Status != "queued" {
			t.Fatalf("retryable failure: %+v", res)
		}
		if r := bg.Do("POST", "/api/agent/jobs/"+b.ID+"/heartbeat", map[string]any{"stage": "training"}); r.Status != 409 {
			t.Fatalf("stale attempt after requeue: %d %s", r.Status, r.Body)
		}
		// Forged tokens for the job (no genuine secret, old or current
		// attempt numbers) get a 401 that says nothing about the job.
		for _, forged := range []string{"brj_" + b.ID + "_0_x", "brj_" + b.ID + "_1_" + strings.Repeat("0", 64), "brj_" + b.ID + "_7_abc"} {
			fc := s.NewClient(t)
			fc.Bearer = forged
			r := fc.Do("POST", "/api/agent/jobs/"+b.ID+"/heartbeat", map[string]any{"stage": "training"})
			if r.Status != 401 || strings.Contains(string(r.Body), "attempt") || strings.Contains(string(r.Body), "queued") {
				t.Fatalf("forged token %q: %d %s", forged, r.Status, r.Body)
			}
		}
		b2, ok := claimHTTP(t, s, agentTok, "CPU")
		if !ok || b2.ID != b.ID || b2.Attempt != 2 {
			t.Fatalf("reclaim: %+v", b2)
		}
		// A data error is final, with the failure recorded and billed.
		bg.Bearer = b2.Token
		// A negative checkpoint step and an unknown error class are 400s.
		if r := bg.Do("POST", "/api/agent/jobs/"+b.ID+"/checkpoint", map[string]any{"step": -1, "files": []any{}}); r.Status != 400 || !strings.Contains(string(r.Body), "step") {
			t.Fatalf("checkpoint step -1: %d %s", r.Status, r.Body)
		}
		if r := bg.Do("POST", "/api/agent/jobs/"+b.ID+"/fail", map[string]any{"error_class": "gremlins", "message": "x"}); r.Status != 400 || !strings.Contains(string(r.Body), "oom") {
			t.Fatalf("unknown error class: %d %s", r.Status, r.Body)
		}
		bg.MustJSON("POST", "/api/agent/jobs/"+b.ID+"/fail", map[string]any{"error_class": "data", "message": "no trainable examples", "retryable": true}, 200, &res)
		if res.Status != "failed" {
			t.Fatalf("data failure must not retry: %+v", res)
		}
		var jb struct {
			Job struct {
				Status       string  `json:"status"`
				ErrorMessage *string `json:"error_message"`
			} `json:"job"`
			CostRecords []json.RawMessage `json:"cost_records"`
		}
		u.MustJSON("GET", "/api/jobs/"+b.ID, nil, 200, &jb)
		if jb.Job.Status != "failed" || jb.Job.ErrorMessage == nil || !strings.Contains(*jb.Job.ErrorMessage, "validation report") || len(jb.CostRecords) != 1 {
			t.Fatalf("failed job: %+v", jb)
		}
		// OOM guidance.
		j3 := storetest.NewJob(t, st, u.UserID, d.ID, "CPU")
		c3, _ := claimHTTP(t, s, agentTok, "CPU")
		if c3.ID != j3.ID {
			t.Fatalf("claimed %s, want %s", c3.ID, j3.ID)
		}
		g := s.NewClient(t)
		g.Bearer = c3.Token
		g.MustJSON("POST", "/api/agent/jobs/"+c3.ID+"/fail", map[string]any{"error_class": "oom", "message": "CUDA out of memory", "retryable": false}, 200, nil)
		u.MustJSON("GET", "/api/jobs/"+c3.ID, nil, 200, &jb)
		if !strings.Contains(*jb.Job.ErrorMessage, "smaller batch size") {
			t.Fatalf("oom guidance: %q", *jb.Job.ErrorMessage)
		}
	})
}
