package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// testLaunches: a launch creates its one-job agent, moves requested →
// submitted → claimed → ended (which revokes the agent), survives as rows a
// restarted server can list, and a user sees only launches of their jobs.
func testLaunches(t *testing.T, s store.Store) {
	sys := store.AsSystem(context.Background())
	u := NewUser(t, s, "launch@example.com")
	other := NewUser(t, s, "other-launch@example.com")
	d := NewDataset(t, s, u.ID, "launch data")
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	older := jobAt(t, s, u.ID, d.ID, "H100-80GB", now.Add(-3*time.Minute)) // queued first: an unbound agent would take it
	j := jobAt(t, s, u.ID, d.ID, "H100-80GB", now.Add(-2*time.Minute))
	j2 := jobAt(t, s, u.ID, d.ID, "CPU", now.Add(-time.Minute))

	if q, err := s.JobsQueued(sys, 10); err != nil || len(q) != 3 || q[0].ID != older.ID || q[1].ID != j.ID {
		t.Fatalf("queued jobs: %v %+v", err, q)
	}
	l, err := s.LaunchCreate(sys, store.LaunchCreateParams{ID: uuid.NewString(), JobID: j.ID, Attempt: 1, Launcher: "hpc", Kind: "slurm",
		AgentName: "launch-hpc", TokenHash: "launch-token-hash", TimeLimitSeconds: 3600, At: now})
	if err != nil || l.State != store.LaunchRequested || l.AgentID == "" {
		t.Fatalf("create: %v %+v", err, l)
	}
	if _, err := s.LaunchCreate(sys, store.LaunchCreateParams{ID: uuid.NewString(), JobID: j.ID, Attempt: 1, Launcher: "other", Kind: "slurm",
		AgentName: "launch-other", TokenHash: "launch-token-hash-2", TimeLimitSeconds: 3600, At: now}); !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("a second open launch for one job must be a conflict (two reconcilers racing): %v", err)
	}
	ag, err := s.AgentByTokenHash(sys, "launch-token-hash")
	if err != nil || ag.ID != l.AgentID || ag.JobID != j.ID {
		t.Fatalf("the launch's agent must exist bound to the job: %v %+v", err, ag)
	}

	if err := s.LaunchSubmitted(sys, store.LaunchSubmittedParams{ID: l.ID, ExternalID: "4242", LogsURL: "https://logs.example/4242", At: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	open, err := s.LaunchesOpen(sys)
	if err != nil || len(open) != 1 || open[0].ExternalID != "4242" || open[0].State != store.LaunchSubmitted || open[0].SubmittedAt == nil ||
		open[0].LogsURL != "https://logs.example/4242" || open[0].TimeLimitSeconds != 3600 {
		t.Fatalf("open launches: %v %+v", err, open)
	}
	// A bound agent claims only its job, even when an older matching job waits.
	c, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, JobID: j.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: hashFor, Now: now.Add(2 * time.Second),
		Lease: time.Minute, Decide: claimEffects()})
	if err != nil || !ok || c.Job.ID != j.ID {
		t.Fatalf("bound claim: %v %v %+v", ok, err, c.Job.ID)
	}
	if _, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, JobID: j.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: hashFor, Now: now.Add(3 * time.Second),
		Lease: time.Minute, Decide: claimEffects()}); err != nil || ok {
		t.Fatalf("a bound agent must not claim another job: ok=%v err=%v", ok, err)
	}
	online, err := s.AgentsOnline(sys, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range online {
		if a.ID == ag.ID {
			t.Fatalf("an agent that never called claim is not online: %+v", a)
		}
	}
	if err := s.AgentSeen(sys, ag.ID, AgentGPUs("H100-80GB", 1), "t", "h", now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	online, err = s.AgentsOnline(sys, now)
	if err != nil || len(online) != 1 || online[0].ID != ag.ID || !online[0].Busy || online[0].JobID != j.ID {
		t.Fatalf("online: %v %+v", err, online)
	}
	if err := s.LaunchClaimed(sys, l.ID, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}

	// Users see launches of their own jobs only; the system lists a job's.
	mine, err := s.LaunchList(store.WithUser(context.Background(), u.ID), store.LaunchListParams{UserID: u.ID})
	if err != nil || len(mine) != 1 || mine[0].State != store.LaunchClaimed || mine[0].ClaimedAt == nil || !mine[0].ClaimedAt.Equal(now.Add(2*time.Second)) {
		t.Fatalf("user's launches: %v %+v", err, mine)
	}
	if theirs, err := s.LaunchList(store.WithUser(context.Background(), other.ID), store.LaunchListParams{UserID: other.ID, JobID: j.ID}); err != nil || len(theirs) != 0 {
		t.Fatalf("another user must see none: %v %+v", err, theirs)
	}
	if byJob, err := s.LaunchList(sys, store.LaunchListParams{JobID: j2.ID}); err != nil || len(byJob) != 0 {
		t.Fatalf("job 2 has no launches: %v %+v", err, byJob)
	}

	// Ending revokes the one-job token; an ended launch cannot change again.
	if err := s.LaunchEnd(sys, store.LaunchEndParams{ID: l.ID, Reason: "the job completed", At: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentByTokenHash(sys, "launch-token-hash"); !apperr.Is(err, apperr.KindUnauthorized) {
		t.Fatalf("the ended launch's token must be revoked: %v", err)
	}
	if err := s.LaunchEnd(sys, store.LaunchEndParams{ID: l.ID, Reason: "again", At: now.Add(2 * time.Hour)}); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("ending twice: %v", err)
	}
	if err := s.LaunchClaimed(sys, l.ID, now); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("claiming an ended launch: %v", err)
	}
	if open, err := s.LaunchesOpen(sys); err != nil || len(open) != 0 {
		t.Fatalf("no open launches: %v %+v", err, open)
	}
	all, err := s.LaunchList(sys, store.LaunchListParams{JobID: j.ID})
	if err != nil || len(all) != 1 || all[0].EndReason != "the job completed" || all[0].EndedAt == nil {
		t.Fatalf("ended launch: %v %+v", err, all)
	}
	if online, err := s.AgentsOnline(sys, now); err != nil || len(online) != 0 {
		t.Fatalf("a revoked agent is not online: %v %+v", err, online)
	}
}

// jobAt creates a queued job at a given time (the queue's order).
func jobAt(t *testing.T, s store.Store, userID, datasetID, gpuType string, at time.Time) store.Job {
	t.Helper()
	j, err := s.JobCreate(store.WithUser(context.Background(), userID), store.JobCreateParams{At: at, ID: uuid.NewString(), UserID: userID, DatasetID: datasetID,
		PresetID: "balanced", Hyperparameters: fixtureHyper, GPUConfig: fixtureGPU(gpuType), TotalEpochs: 1, TotalSteps: 10,
		EstimatedTotalCost: 1, EstimatedCompletionAt: at.Add(time.Hour), BaseModel: "m", GPUType: gpuType, NumGPUs: 1})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return j
}
