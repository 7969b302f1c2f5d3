package jobs_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
)

// TestLifecycle runs a job through claim, heartbeats, a lost agent, a
// second attempt and completion on both engines, on a clock the test
// advances: billing counts only the attempts' run time.
func TestLifecycle(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		st := e.Open(t)
		ctx := context.Background()
		sys := store.AsSystem(ctx)
		clock := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		js := &jobs.Service{Store: st, Now: func() time.Time { return clock }}
		u := storetest.NewUser(t, st, "life@example.com")
		d := storetest.NewDataset(t, st, u.ID, "life data")
		j := storetest.NewJob(t, st, u.ID, d.ID, "H100-80GB") // $3.60/h
		ag, _ := st.AgentCreate(sys, "a", "life-hash", clock)
		claim := func() store.ExecJob {
			t.Helper()
			if _, ok, err := js.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "H100-80GB", GPUCount: 1, TokenHash: func(string, int) string { return "h" }, Lease: time.Minute}); !ok || err != nil {
				t.Fatalf("claim: %v %v", ok, err)
			}
			x, _ := st.JobExec(sys, j.ID)
			return x
		}
		clock = clock.Add(10 * time.Minute) // queued time is never billed
		x := claim()
		if x.Status != store.JobInitializing || x.CurrentStage != "downloading" {
			t.Fatalf("claimed: %s/%s", x.Status, x.CurrentStage)
		}
		clock = clock.Add(30 * time.Minute)
		if _, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "loading_model", Lease: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if y, _ := st.JobExec(sys, j.ID); y.Status != store.JobInitializing || y.CurrentCost != 1.8 {
			t.Fatalf("setup heartbeat: %s $%v", y.Status, y.CurrentCost)
		}
		if _, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Step: 3, Lease: time.Minute}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(90 * time.Minute) // silent: the lease expired long ago
		if err := js.Requeue(ctx, x, "agent_lost", "the agent missed its heartbeats"); err != nil {
			t.Fatal(err)
		}
		// The requeued attempt can no longer report.
		if _, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Lease: time.Minute}); !apperr.Is(err, apperr.KindConflict) {
			t.Fatalf("heartbeat of a requeued attempt: %v", err)
		}
		clock = clock.Add(time.Hour) // waiting in the queue again: not billed
		x2 := claim()
		clock = clock.Add(30 * time.Minute)
		done, err := js.Complete(ctx, x2, jobs.Completion{Summary: "Validation loss 1.234.", Artifact: store.ArtifactCreateParams{Name: "life · m"}})
		if err != nil {
			t.Fatal(err)
		}
		// 2 h of attempt 1 (claim → requeue) + 30 min of attempt 2 = 2.5 h × $3.60.
		if done.Status != store.JobCompleted || done.FinalCost == nil || *done.FinalCost != 9 || done.ArtifactID == nil {
			t.Fatalf("done: %s %v %v", done.Status, done.FinalCost, done.ArtifactID)
		}
		uctx := store.WithUser(ctx, u.ID)
		recs, _ := st.CostRecordsForJob(uctx, u.ID, j.ID)
		if len(recs) != 1 || recs[0].Amount != 9 || recs[0].Details.Compute == nil || recs[0].Details.Compute.Seconds != 9000 || recs[0].Details.Compute.Attempts != 2 || !recs[0].RecordedAt.Equal(clock) {
			t.Fatalf("cost records: %+v", recs)
		}
		notes, _, _ := st.NotificationList(uctx, u.ID, false, 10)
		var kinds []string
		for _, n := range notes {
			kinds = append(kinds, n.Type+" "+*n.ActionURL)
		}
		slices.Sort(kinds)
		want := []string{"artifact_ready /models/" + *done.ArtifactID, "job_completed /training/jobs/" + j.ID, "job_started /training/jobs/" + j.ID}
		if strings.Join(kinds, ",") != strings.Join(want, ",") {
			t.Fatalf("notifications %v, want %v (the second claim notifies nobody)", kinds, want)
		}
		// Finished: nothing moves it again, and nothing is billed twice.
		if err := js.Fail(ctx, x2, jobs.Failure{Class: "internal", Message: "late", Line: "late", Notice: "late"}); !apperr.Is(err, apperr.KindConflict) {
			t.Fatalf("fail after completion: %v", err)
		}
		if _, err := js.Cancel(uctx, u.ID, j.ID); err == nil || err.Error() != "the job is already completed" {
			t.Fatalf("cancel after completion: %v", err)
		}
		if recs, _ := st.CostRecordsForJob(uctx, u.ID, j.ID); len(recs) != 1 {
			t.Fatalf("cost records after refused steps: %d", len(recs))
		}
		evs, _ := st.JobEventsList(uctx, u.ID, j.ID, 50)
		var lines []string
		for _, ev := range evs {
			lines = append(lines, ev.Message)
		}
		if got := strings.Join(lines, " | "); got != "claimed by an agent (attempt 1) | requeued (retry 1 of 3): the agent missed its heartbeats | claimed by an agent (attempt 2) | completed: adapter uploaded" {
			t.Fatalf("events: %s", got)
		}
	})
}

// TestCancel: a queued job is cancelled at once and free; an active one is
// asked to stop, sees it on its heartbeat, and is billed for what it ran.
func TestCancel(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		st := e.Open(t)
		ctx := context.Background()
		sys := store.AsSystem(ctx)
		clock := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		js := &jobs.Service{Store: st, Now: func() time.Time { return clock }}
		u := storetest.NewUser(t, st, "cancel@example.com")
		uctx := store.WithUser(ctx, u.ID)
		d := storetest.NewDataset(t, st, u.ID, "cancel data")
		queued := storetest.NewJob(t, st, u.ID, d.ID, "CPU-X")
		c, err := js.Cancel(uctx, u.ID, queued.ID)
		if err != nil || c.Status != store.JobCancelled || c.FinalCost == nil || *c.FinalCost != 0 {
			t.Fatalf("cancel queued: %v %+v", err, c)
		}
		if _, err := js.Cancel(uctx, u.ID, queued.ID); err == nil || err.Error() != "the job is already cancelled" {
			t.Fatalf("cancel twice: %v", err)
		}
		active := storetest.NewJob(t, st, u.ID, d.ID, "CPU-X")
		ag, _ := st.AgentCreate(sys, "a", "cancel-hash", clock)
		if _, ok, err := js.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "CPU-X", GPUCount: 1, TokenHash: func(string, int) string { return "h" }, Lease: time.Minute}); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		x, _ := st.JobExec(sys, active.ID)
		if c, err := js.Cancel(uctx, u.ID, active.ID); err != nil || c.Status != store.JobInitializing || c.CancelRequestedAt == nil {
			t.Fatalf("cancel active: %v %+v", err, c)
		}
		clock = clock.Add(time.Hour)
		if stop, err := js.Heartbeat(ctx, x, jobs.Progress{Stage: "training", Lease: time.Minute}); err != nil || stop != store.StopCancel {
			t.Fatalf("heartbeat after cancel: %v %v", stop, err)
		}
		if err := js.Stopped(ctx, x, 4); err != nil {
			t.Fatal(err)
		}
		y, _ := st.JobExec(sys, active.ID)
		if y.Status != store.JobCancelled || y.FinalCost == nil || *y.FinalCost != 3.6 {
			t.Fatalf("stopped: %s %v", y.Status, y.FinalCost)
		}
		notes, _, _ := st.NotificationList(uctx, u.ID, false, 10)
		var msgs []string
		for _, n := range notes {
			msgs = append(msgs, n.Message)
		}
		all := strings.Join(msgs, " | ")
		if len(notes) != 3 || !strings.Contains(notes[0].Message, "stopped at step 4") || !strings.Contains(all, "nothing was charged") {
			t.Fatalf("notifications: %s", all)
		}
	})
}
