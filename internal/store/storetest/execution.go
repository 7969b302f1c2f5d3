package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// NewJob creates a queued job for tests.
func NewJob(t testing.TB, s store.Store, userID, datasetID, gpuType string) store.Job {
	t.Helper()
	j, err := s.JobCreate(store.WithUser(context.Background(), userID), store.JobCreateParams{ID: uuid.NewString(), UserID: userID, DatasetID: datasetID,
		PresetID: "balanced", Hyperparameters: json.RawMessage(`{"base_model":"m","num_epochs":1}`),
		GPUConfig: json.RawMessage(`{"gpu_type":"` + gpuType + `","num_gpus":1,"cost_per_gpu_hour":3.6}`), TotalEpochs: 1, TotalSteps: 10,
		EstimatedTotalCost: 1, EstimatedCompletionAt: time.Now().Add(time.Hour), BaseModel: "m", GPUType: gpuType, NumGPUs: 1})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return j
}

func hashFor(id string, attempt int) string { return fmt.Sprintf("h-%s-%d", id, attempt) }

func testExecution(t *testing.T, s store.Store) {
	sys := store.AsSystem(context.Background())
	u := NewUser(t, s, "exec@example.com")
	d := NewDataset(t, s, u.ID, "exec data")
	ag, err := s.AgentCreate(sys, "a1", "agent-hash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentByTokenHash(sys, "nope"); !apperr.Is(err, apperr.KindUnauthorized) {
		t.Fatalf("unknown agent token: %v", err)
	}
	j := NewJob(t, s, u.ID, d.ID, "H100-80GB")
	now := time.Now().UTC().Truncate(time.Millisecond)
	// Wrong GPU type: nothing to claim.
	if _, ok, _ := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "CPU", GPUCount: 1, TokenHash: hashFor, Now: now, Lease: time.Minute}); ok {
		t.Fatal("a CPU agent claimed an H100 job")
	}
	c, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: hashFor, Now: now, Lease: time.Minute})
	if err != nil || !ok || c.Job.ID != j.ID || c.Dataset.ID != d.ID {
		t.Fatalf("claim: %v %v %+v", err, ok, c.Job)
	}
	e, _ := s.JobExec(sys, j.ID)
	if e.Status != store.JobInitializing || e.Attempt != 1 || e.JobTokenHash != hashFor(j.ID, 1) || e.StartedAt == nil {
		t.Fatalf("after claim: %+v", e)
	}
	// Heartbeat at +30 min: running, cost accrues at $3.60/h.
	cancel, err := s.JobHeartbeat(sys, store.HeartbeatParams{JobID: j.ID, Attempt: 1, Stage: "training", Progress: 40, Epoch: 1, Step: 4, TotalSteps: 10,
		Now: now.Add(30 * time.Minute), Lease: time.Minute})
	if err != nil || cancel {
		t.Fatalf("heartbeat: %v %v", err, cancel)
	}
	got, _ := s.JobGet(store.WithUser(context.Background(), u.ID), u.ID, j.ID)
	if got.Status != store.JobRunning || got.CurrentCost != 1.8 || got.CurrentStep != 4 {
		t.Fatalf("after heartbeat: %s cost %v step %d", got.Status, got.CurrentCost, got.CurrentStep)
	}
	// A stale attempt is refused.
	if _, err := s.JobHeartbeat(sys, store.HeartbeatParams{JobID: j.ID, Attempt: 0 + 7, Stage: "training", Now: now, Lease: time.Minute}); !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("stale heartbeat: %v", err)
	}
	// Metrics are idempotent on step.
	loss := func(v float64) *float64 { return &v }
	pts := []store.MetricPoint{{Step: 1, Epoch: 0, TrainingLoss: loss(2.5), LearningRate: loss(1e-4)}, {Step: 2, TrainingLoss: loss(2.2), LearningRate: loss(1e-4)}}
	for i := 0; i < 2; i++ {
		if n, err := s.MetricsUpsert(sys, j.ID, 1, pts); err != nil || n != 2 {
			t.Fatalf("metrics: %d %v", n, err)
		}
	}
	if _, err := s.MetricsUpsert(sys, j.ID, 1, []store.MetricPoint{{Step: 2, ValidationLoss: loss(2.4)}}); err != nil {
		t.Fatal(err)
	}
	list, err := s.MetricsList(store.WithUser(context.Background(), u.ID), u.ID, j.ID, -1, 100)
	if err != nil || len(list) != 2 || *list[1].TrainingLoss != 2.2 || list[1].ValidationLoss == nil || *list[1].ValidationLoss != 2.4 {
		t.Fatalf("metrics list: %v %+v", err, list)
	}
	if since, _ := s.MetricsList(store.WithUser(context.Background(), u.ID), u.ID, j.ID, 1, 100); len(since) != 1 {
		t.Fatalf("since_step: %d", len(since))
	}
	other := NewUser(t, s, "other-exec@example.com")
	if _, err := s.MetricsList(store.WithUser(context.Background(), other.ID), other.ID, j.ID, -1, 100); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("another user's metrics: %v", err)
	}
	if err := s.JobCheckpointSet(sys, j.ID, 1, json.RawMessage(`{"step":4,"files":[]}`)); err != nil {
		t.Fatal(err)
	}
	// Lease expiry → requeue; the next claim is attempt 2 and keeps the checkpoint.
	exp, err := s.JobExpiredLeases(sys, now.Add(2*time.Hour), 10)
	if err != nil || len(exp) != 1 {
		t.Fatalf("expired: %v %d", err, len(exp))
	}
	if _, err := s.JobRequeue(sys, j.ID, 1, "agent_lost", "silent", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c2, ok, _ := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 8, TokenHash: hashFor, Now: now.Add(3 * time.Hour), Lease: time.Minute})
	e2, _ := s.JobExec(sys, j.ID)
	if !ok || c2.Job.ID != j.ID || e2.Attempt != 2 || e2.RetryCount != 1 || string(e2.Checkpoint) == "" {
		t.Fatalf("reclaim: %v %+v", ok, e2)
	}
	// The old attempt can no longer finish the job.
	if _, err := s.JobFinish(sys, store.FinishParams{JobID: j.ID, Attempt: 1, Status: store.JobCompleted, Now: now}); !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("stale finish: %v", err)
	}
	tps := 1234.5
	done, err := s.JobFinish(sys, store.FinishParams{JobID: j.ID, Attempt: 2, Status: store.JobCompleted, Now: now.Add(3*time.Hour + 30*time.Minute), MeasuredTPS: &tps,
		Artifact:     &store.ArtifactCreateParams{Name: "a", QualityMetrics: json.RawMessage(`{}`), TrainingSummary: json.RawMessage(`{}`), Configuration: json.RawMessage(`{}`), Artifacts: json.RawMessage(`{}`)},
		Notification: &store.NotificationCreateParams{Type: "job_completed", Title: "t", Message: "m"}, Event: "done"})
	if err != nil || done.ArtifactID == nil {
		t.Fatalf("finish: %v %+v", err, done)
	}
	// Billed: 2 h of attempt 1 (claim → requeue) + 30 min of attempt 2 = 2.5 h × $3.60.
	if done.FinalCost == nil || *done.FinalCost != 9 {
		t.Fatalf("final cost %v, want 9", done.FinalCost)
	}
	recs, err := s.CostRecordsForJob(store.WithUser(context.Background(), u.ID), u.ID, j.ID)
	if err != nil || len(recs) != 1 || recs[0].Amount != 9 || recs[0].CostType != "compute" {
		t.Fatalf("cost records: %v %+v", err, recs)
	}
	cal, err := s.JobCalibration(sys, "H100-80GB", "m")
	if err != nil || cal.Runs != 1 || cal.TokensPerSecond != 1234.5 {
		t.Fatalf("calibration: %v %+v", err, cal)
	}
	evs, err := s.JobEventsList(store.WithUser(context.Background(), u.ID), u.ID, j.ID, 50)
	if err != nil || len(evs) < 3 {
		t.Fatalf("events: %v %d", err, len(evs))
	}
}

// testConcurrentClaims: many agents claim at once; no job is handed out twice.
func testConcurrentClaims(t *testing.T, s store.Store) {
	sys := store.AsSystem(context.Background())
	u := NewUser(t, s, "cc@example.com")
	d := NewDataset(t, s, u.ID, "cc")
	const jobs, agents = 12, 6
	for i := 0; i < jobs; i++ {
		NewJob(t, s, u.ID, d.ID, "A100-80GB")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for a := 0; a < agents; a++ {
		ag, err := s.AgentCreate(sys, fmt.Sprintf("agent-%d", a), fmt.Sprintf("hash-%d", a))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "A100-80GB", GPUCount: 1, TokenHash: hashFor, Now: time.Now().UTC(), Lease: time.Minute})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				seen[c.Job.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Fatalf("claimed %d distinct jobs, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("job %s claimed %d times", id, n)
		}
	}
}
