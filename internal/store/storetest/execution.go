package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/google/uuid"
)

// NewJob creates a queued job for tests.
func NewJob(t testing.TB, s store.Store, userID, datasetID, gpuType string) store.Job {
	t.Helper()
	j, err := s.JobCreate(store.WithUser(context.Background(), userID), store.JobCreateParams{At: time.Now().UTC(), ID: uuid.NewString(), UserID: userID, DatasetID: datasetID,
		PresetID: "balanced", Hyperparameters: fixtureHyper, GPUConfig: fixtureGPU(gpuType), TotalEpochs: 1, TotalSteps: 10,
		EstimatedTotalCost: 1, EstimatedCompletionAt: time.Now().Add(time.Hour), BaseModel: "m", GPUType: gpuType, NumGPUs: 1})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return j
}

// fixtureHyper are the fixture jobs' hyperparameters (a whole set, as
// training.Create writes them).
var fixtureHyper = catalog.Hyperparameters{BaseModel: "m", NumEpochs: 1, LearningRate: 2e-4, BatchSize: 8, LoraRank: 16, LoraAlpha: 32,
	LoraDropout: 0.05, MaxSeqLength: 2048, GradientAccumulationSteps: 1}

// fixtureGPU is the fixture jobs' GPU configuration: one GPU at $3.60/h.
func fixtureGPU(gpuType string) jobdoc.GPUConfig {
	price := 3.6
	return jobdoc.GPUConfig{GPUType: gpuType, NumGPUs: 1, CostPerGPUHour: &price}
}

func hashFor(id string, attempt int) string { return fmt.Sprintf("h-%s-%d", id, attempt) }

// fixed decides the same effects whatever the row (the store's tests check
// persistence; the rules are tested in internal/jobs).
func fixed(eff store.Effects) store.Decide {
	return func(store.ExecJob) (store.Effects, error) { return eff, nil }
}

func claimEffects() store.Decide {
	return fixed(store.Effects{Status: store.JobInitializing, Stage: "downloading", Events: []store.JobEvent{{Level: "info", Message: "claimed"}}})
}

// testExecution: each execution step persists what its Decide returned, in
// one transaction, against the attempt it names.
func testExecution(t *testing.T, s store.Store) {
	sys := store.AsSystem(context.Background())
	u := NewUser(t, s, "exec@example.com")
	d := NewDataset(t, s, u.ID, "exec data")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ag, err := s.AgentCreate(sys, "a1", "agent-hash", now)
	if err != nil || !ag.CreatedAt.Equal(now) {
		t.Fatalf("agent: %v %+v", err, ag)
	}
	if _, err := s.AgentByTokenHash(sys, "nope"); !apperr.Is(err, apperr.KindUnauthorized) {
		t.Fatalf("unknown agent token: %v", err)
	}
	j := NewJob(t, s, u.ID, d.ID, "H100-80GB")
	// Wrong GPU type: nothing to claim, and Decide is never asked.
	if _, ok, _ := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "CPU", GPUCount: 1, TokenHash: hashFor, Now: now, Lease: time.Minute,
		Decide: func(store.ExecJob) (store.Effects, error) {
			t.Fatal("decide called with no job")
			return store.Effects{}, nil
		}}); ok {
		t.Fatal("a CPU agent claimed an H100 job")
	}
	// A refused claim writes nothing.
	if _, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: hashFor, Now: now, Lease: time.Minute,
		Decide: func(store.ExecJob) (store.Effects, error) { return store.Effects{}, apperr.Conflict("no") }}); ok || !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("refused claim: %v %v", ok, err)
	}
	if e, _ := s.JobExec(sys, j.ID); e.Status != store.JobQueued || e.Attempt != 0 {
		t.Fatalf("after a refused claim: %s attempt %d", e.Status, e.Attempt)
	}
	c, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: hashFor, Now: now, Lease: time.Minute, Decide: claimEffects()})
	if err != nil || !ok || c.Job.ID != j.ID || c.Dataset.ID != d.ID {
		t.Fatalf("claim: %v %v %+v", err, ok, c.Job)
	}
	e, _ := s.JobExec(sys, j.ID)
	if e.Status != store.JobInitializing || e.CurrentStage != "downloading" || e.Attempt != 1 || e.JobTokenHash != hashFor(j.ID, 1) || e.StartedAt == nil {
		t.Fatalf("after claim: %+v", e)
	}
	stop, err := s.JobHeartbeat(sys, store.HeartbeatParams{JobID: j.ID, Attempt: 1, Stage: "training", Progress: 40, Epoch: 1, Step: 4, TotalSteps: 10,
		Now: now.Add(30 * time.Minute), Lease: time.Minute, Decide: fixed(store.Effects{Status: store.JobRunning, Cost: 1.8})})
	if err != nil || stop != "" {
		t.Fatalf("heartbeat: %v %q", err, stop)
	}
	got, _ := s.JobGet(store.WithUser(context.Background(), u.ID), u.ID, j.ID)
	if got.Status != store.JobRunning || got.CurrentCost != 1.8 || got.CurrentStep != 4 {
		t.Fatalf("after heartbeat: %s cost %v step %d", got.Status, got.CurrentCost, got.CurrentStep)
	}
	// A stale attempt is refused before Decide.
	if _, err := s.JobHeartbeat(sys, store.HeartbeatParams{JobID: j.ID, Attempt: 7, Stage: "training", Now: now, Lease: time.Minute, Decide: fixed(store.Effects{})}); !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("stale heartbeat: %v", err)
	}
	// Metrics are idempotent on step; points without a time get the caller's.
	loss := func(v float64) *float64 { return &v }
	pts := []store.MetricPoint{{Step: 1, Epoch: 0, TrainingLoss: loss(2.5), LearningRate: loss(1e-4)}, {Step: 2, TrainingLoss: loss(2.2), LearningRate: loss(1e-4), TrainMeanTokenAccuracy: loss(0.25)}}
	for i := 0; i < 2; i++ {
		if n, err := s.MetricsUpsert(sys, j.ID, 1, pts, now); err != nil || n != 2 {
			t.Fatalf("metrics: %d %v", n, err)
		}
	}
	if _, err := s.MetricsUpsert(sys, j.ID, 1, []store.MetricPoint{{Step: 2, ValidationLoss: loss(2.4), ValidMeanTokenAccuracy: loss(0.5)}}, now); err != nil {
		t.Fatal(err)
	}
	list, err := s.MetricsList(store.WithUser(context.Background(), u.ID), u.ID, j.ID, -1, 100)
	if err != nil || len(list) != 2 || *list[1].TrainingLoss != 2.2 || list[1].ValidationLoss == nil || *list[1].ValidationLoss != 2.4 || !list[0].Timestamp.Equal(now) {
		t.Fatalf("metrics list: %v %+v", err, list)
	}
	// Token accuracies are kept per step like the losses (a later point fills in, never erases).
	if a, v := list[1].TrainMeanTokenAccuracy, list[1].ValidMeanTokenAccuracy; a == nil || *a != 0.25 || v == nil || *v != 0.5 || list[0].TrainMeanTokenAccuracy != nil {
		t.Fatalf("token accuracies: %+v", list)
	}
	// The job's current metrics keep the last known losses a batch lacks.
	cur, _ := s.JobGet(store.WithUser(context.Background(), u.ID), u.ID, j.ID)
	if m := cur.CurrentMetrics; m == nil || m.Step != 2 || m.TrainingLoss == nil || *m.TrainingLoss != 2.2 || m.ValidationLoss == nil || *m.ValidationLoss != 2.4 || m.LearningRate == nil {
		t.Fatalf("current metrics after a validation-only batch: %+v", m)
	}
	if _, err := s.MetricsUpsert(sys, j.ID, 1, []store.MetricPoint{{Step: 3, TrainingLoss: loss(2.1), MFU: loss(0.3)}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MetricsUpsert(sys, j.ID, 1, []store.MetricPoint{{Step: 4, TrainingLoss: loss(2.0)}}, now); err != nil {
		t.Fatal(err)
	}
	cur, _ = s.JobGet(store.WithUser(context.Background(), u.ID), u.ID, j.ID)
	if m := cur.CurrentMetrics; m == nil || m.Step != 4 || *m.TrainingLoss != 2.0 || m.ValidationLoss == nil || *m.ValidationLoss != 2.4 || m.MFU != nil {
		t.Fatalf("current metrics after a training-only batch: %+v", m)
	}
	if since, _ := s.MetricsList(store.WithUser(context.Background(), u.ID), u.ID, j.ID, 1, 100); len(since) != 3 { // steps 2, 3 and 4
		t.Fatalf("since_step: %d", len(since))
	}
	other := NewUser(t, s, "other-exec@example.com")
	if _, err := s.MetricsList(store.WithUser(context.Background(), other.ID), other.ID, j.ID, -1, 100); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("another user's metrics: %v", err)
	}
	if err := s.JobCheckpointSet(sys, j.ID, 1, jobdoc.Checkpoint{Step: 4, Files: []jobdoc.File{}}, now); err != nil {
		t.Fatal(err)
	}
	// Lease expiry → requeue; the next claim is attempt 2 and keeps the checkpoint.
	exp, err := s.JobExpiredLeases(sys, now.Add(2*time.Hour), 10)
	if err != nil || len(exp) != 1 {
		t.Fatalf("expired: %v %d", err, len(exp))
	}
	if _, err := s.JobRequeue(sys, store.RequeueParams{JobID: j.ID, Attempt: 1, Class: "agent_lost", Message: "silent", Now: now.Add(2 * time.Hour),
		Decide: fixed(store.Effects{Status: store.JobQueued, Stage: "queued", RunSeconds: 7200, Cost: 7.2, Events: []store.JobEvent{{Level: "warn", Message: "requeued"}}})}); err != nil {
		t.Fatal(err)
	}
	c2, ok, _ := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 8, TokenHash: hashFor, Now: now.Add(3 * time.Hour), Lease: time.Minute, Decide: claimEffects()})
	e2, _ := s.JobExec(sys, j.ID)
	if !ok || c2.Job.ID != j.ID || e2.Attempt != 2 || e2.RetryCount != 1 || e2.Checkpoint == nil || e2.Checkpoint.Step != 4 || e2.RunSeconds != 7200 || e2.CurrentCost != 7.2 {
		t.Fatalf("reclaim: %v %+v", ok, e2)
	}
	// The old attempt can no longer finish the job.
	if _, err := s.JobFinish(sys, store.FinishParams{JobID: j.ID, Attempt: 1, Now: now, Decide: fixed(store.Effects{Status: store.JobCompleted})}); !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("stale finish: %v", err)
	}
	tps := 1234.5
	end := now.Add(3*time.Hour + 30*time.Minute)
	done, err := s.JobFinish(sys, store.FinishParams{JobID: j.ID, Attempt: 2, Now: end, MeasuredTPS: &tps,
		Artifact: &store.ArtifactCreateParams{ID: uuid.NewString(), Name: "a"},
		Decide: fixed(store.Effects{Status: store.JobCompleted, Stage: store.JobCompleted, RunSeconds: 9000, Cost: 9, Progress: 100,
			Events:        []store.JobEvent{{Level: "info", Message: "done"}},
			Notifications: []store.NotificationCreateParams{{UserID: u.ID, Type: "job_completed", Title: "t", Message: "m"}},
			CostRecords:   []store.CostRecordCreateParams{{UserID: u.ID, JobID: j.ID, Type: "compute", Amount: 9, Details: costdoc.Details{Compute: &costdoc.Compute{GPUType: "H100-80GB", NumGPUs: 1, Seconds: 9000, Attempts: 2, RatePerHour: 3.6, Status: "completed"}}, BillingPeriod: "2026-12-03", At: end}}})})
	if err != nil || done.ArtifactID == nil || done.Status != store.JobCompleted || done.FinalCost == nil || *done.FinalCost != 9 {
		t.Fatalf("finish: %v %+v", err, done)
	}
	recs, err := s.CostRecordsForJob(store.WithUser(context.Background(), u.ID), u.ID, j.ID)
	if err != nil || len(recs) != 1 || recs[0].Amount != 9 || recs[0].CostType != "compute" || !recs[0].RecordedAt.Equal(end) ||
		recs[0].Details.Compute == nil || *recs[0].Details.Compute != (costdoc.Compute{GPUType: "H100-80GB", NumGPUs: 1, Seconds: 9000, Attempts: 2, RatePerHour: 3.6, Status: "completed"}) {
		t.Fatalf("cost records: %v %+v", err, recs)
	}
	notes, _, err := s.NotificationList(store.WithUser(context.Background(), u.ID), u.ID, false, 10)
	if err != nil || len(notes) != 1 || notes[0].Type != "job_completed" || !notes[0].CreatedAt.Equal(end) {
		t.Fatalf("notifications: %v %+v", err, notes)
	}
	cal, err := s.JobCalibration(sys, "H100-80GB", "m")
	if err != nil || cal.Runs != 1 || cal.TokensPerSecond != 1234.5 {
		t.Fatalf("calibration: %v %+v", err, cal)
	}
	evs, err := s.JobEventsList(store.WithUser(context.Background(), u.ID), u.ID, j.ID, 50)
	if err != nil || len(evs) != 4 || evs[3].Message != "done" || !evs[3].CreatedAt.Equal(end) {
		t.Fatalf("events: %v %+v", err, evs)
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
		ag, err := s.AgentCreate(sys, fmt.Sprintf("agent-%d", a), fmt.Sprintf("hash-%d", a), time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "A100-80GB", GPUCount: 1, TokenHash: hashFor, Now: time.Now().UTC(), Lease: time.Minute, Decide: claimEffects()})
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
