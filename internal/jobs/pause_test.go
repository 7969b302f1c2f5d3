package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
)

// TestPauseResume: a queued job pauses at once; a running one keeps
// training until a checkpoint is registered after the request, then the
// heartbeat says "pause", the agent's stop parks it (time kept, checkpoint
// kept, no retry counted); resume queues it again; a paused job can be
// cancelled and its run time is billed then. On both engines.
func TestPauseResume(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		st := e.Open(t)
		ctx := context.Background()
		sys := store.AsSystem(ctx)
		clock := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		js := &jobs.Service{Store: st, Now: func() time.Time { return clock }}
		u := storetest.NewUser(t, st, "pause@example.com")
		uctx := store.WithUser(ctx, u.ID)
		d := storetest.NewDataset(t, st, u.ID, "pause data")
		j := storetest.NewJob(t, st, u.ID, d.ID, "H100-80GB") // $3.60/h

		if p, err := js.Pause(uctx, u.ID, j.ID); err != nil || p.Status != store.JobPaused {
			t.Fatalf("pause queued: %v %+v", err, p.Status)
		}
		if _, err := js.Pause(uctx, u.ID, j.ID); err == nil || err.Error() != "the job is already paused" {
			t.Fatalf("pause twice: %v", err)
		}
		if r, err := js.Resume(uctx, u.ID, j.ID); err != nil || r.Status != store.JobQueued {
			t.Fatalf("resume: %v %s", err, r.Status)
		}
		if _, err := js.Resume(uctx, u.ID, j.ID); !apperr.Is(err, apperr.KindConflict) {
			t.Fatalf("resume a queued job: %v", err)
		}
		other := storetest.NewUser(t, st, "other-pause@example.com")
		if _, err := js.Pause(store.WithUser(ctx, other.ID), other.ID, j.ID); !apperr.Is(err, apperr.KindNotFound) {
			t.Fatalf("another user's pause: %v", err)
		}

		ag, _ := st.AgentCreate(sys, "a", "pause-hash", clock)
		if _, ok, err := js.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: func(string, int) string { return "h" }, Lease: time.Minute}); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		x, _ := st.JobExec(sys, j.ID)
		clock = clock.Add(30 * time.Minute)
		if stop, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Step: 2, Lease: time.Minute}); err != nil || stop != "" {
			t.Fatalf("heartbeat: %q %v", stop, err)
		}
		if p, err := js.Pause(uctx, u.ID, j.ID); err != nil || p.Status != store.JobRunning {
			t.Fatalf("pause running: %v %s", err, p.Status)
		}
		// No checkpoint since the request: keep training.
		if stop, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Step: 3, Lease: time.Minute}); err != nil || stop != "" {
			t.Fatalf("heartbeat before the checkpoint: %q %v", stop, err)
		}
		clock = clock.Add(time.Minute)
		cp := jobdoc.Checkpoint{Step: 4, Files: []jobdoc.File{{Name: "adapter_model.safetensors", Size: 10, StoragePath: "x"}}}
		if err := st.JobCheckpointSet(sys, j.ID, x.Attempt, cp, clock); err != nil {
			t.Fatal(err)
		}
		if stop, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Step: 4, Lease: time.Minute}); err != nil || stop != store.StopPause {
			t.Fatalf("heartbeat after the checkpoint: %q %v", stop, err)
		}
		clock = clock.Add(29 * time.Minute)
		if err := js.Park(ctx, x, 4); err != nil {
			t.Fatal(err)
		}
		y, _ := st.JobExec(sys, j.ID)
		if y.Status != store.JobPaused || y.RunSeconds != 3600 || y.CurrentCost != 3.6 || y.RetryCount != 0 || y.Checkpoint == nil || y.FinalCost != nil || y.PauseRequestedAt != nil {
			t.Fatalf("parked: %+v", y)
		}
		// The stale attempt can no longer report.
		if _, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Lease: time.Minute}); !apperr.Is(err, apperr.KindConflict) {
			t.Fatalf("heartbeat of the parked attempt: %v", err)
		}
		if _, err := js.Resume(uctx, u.ID, j.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Pause(uctx, u.ID, j.ID); err != nil {
			t.Fatal(err)
		}
		c, err := js.Cancel(uctx, u.ID, j.ID)
		if err != nil || c.Status != store.JobCancelled || c.FinalCost == nil || *c.FinalCost != 3.6 {
			t.Fatalf("cancel paused: %v %+v", err, c)
		}
		recs, _ := st.CostRecordsForJob(uctx, u.ID, j.ID)
		if len(recs) != 1 || recs[0].Amount != 3.6 {
			t.Fatalf("cost records: %+v", recs)
		}
	})
}
