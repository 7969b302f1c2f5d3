package jobs

import (
	"math"
	"testing"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

// TestTransitions checks every status × event pair: the legal ones land
// where the table says, every other one is a 409.
func TestTransitions(t *testing.T) {
	const (
		q  = store.JobQueued
		in = store.JobInitializing
		r  = store.JobRunning
		c  = store.JobCompleted
		f  = store.JobFailed
		x  = store.JobCancelled
		p  = store.JobPaused
	)
	want := map[string]map[Event]string{
		q:  {Claim: in, CancelRequest: x, PauseRequest: p},
		in: {Setup: in, Train: r, Requeue: q, Complete: c, Fail: f, CancelRequest: in, Stopped: x, PauseRequest: in, Parked: p},
		r:  {Setup: r, Train: r, Requeue: q, Complete: c, Fail: f, CancelRequest: r, Stopped: x, PauseRequest: r, Parked: p},
		p:  {Resume: q, CancelRequest: x},
		c:  {},
		f:  {},
		x:  {},
	}
	n := 0
	for _, from := range Statuses {
		for _, ev := range Events {
			n++
			to, err := Next(from, ev)
			exp, legal := want[from][ev]
			switch {
			case legal && (err != nil || to != exp):
				t.Errorf("%s + %s = %q, %v; want %s", from, ev, to, err, exp)
			case !legal && (err == nil || !apperr.Is(err, apperr.KindConflict)):
				t.Errorf("%s + %s = %q, %v; want a 409", from, ev, to, err)
			}
		}
	}
	if n != 7*11 {
		t.Fatalf("checked %d pairs, want 77", n)
	}
	if _, err := Next(p, PauseRequest); err == nil || err.Error() != "the job is already paused" {
		t.Fatalf("pause of a paused job says %v", err)
	}
	if _, err := Next(r, Resume); err == nil || err.Error() != "only a paused job can be resumed; this one is running" {
		t.Fatalf("resume of a running job says %v", err)
	}
	if _, err := Next(c, CancelRequest); err == nil || err.Error() != "the job is already completed" {
		t.Fatalf("cancel of a finished job says %v", err)
	}
}

func TestStageEvent(t *testing.T) {
	for stage, want := range map[string]Event{"downloading": Setup, "preparing": Setup, "loading_model": Setup,
		"training": Train, "evaluating": Train, "saving": Train, "uploading": Train} {
		if got := StageEvent(stage); got != want {
			t.Errorf("StageEvent(%s) = %s, want %s", stage, got, want)
		}
	}
}

func TestCost(t *testing.T) {
	for _, c := range []struct{ secs, rate, want float64 }{{3600, 3.6, 3.6}, {1800, 3.6, 1.8}, {9000, 3.6, 9}, {1, 3.6, 0}, {7, 3.6, 0.01}, {0, 0, 0}} {
		if got := Cost(c.secs, c.rate); got != c.want {
			t.Errorf("Cost(%v, %v) = %v, want %v", c.secs, c.rate, got, c.want)
		}
	}
	price := 2.5
	j := store.Job{GPUConfig: jobdoc.GPUConfig{GPUType: "H100-80GB", NumGPUs: 4, CostPerGPUHour: &price}}
	if got := Rate(j); got != 10 {
		t.Fatalf("Rate of 4 GPUs at $2.50 = %v", got)
	}
	// The world size the agent reported: fewer GPUs bill fewer; more (or none reported) bill what the job asked for.
	for used, want := range map[int]float64{0: 10, 1: 2.5, 2: 5, 4: 10, 8: 10, -1: 10} {
		if got := RateFor(j, used); got != want {
			t.Errorf("RateFor(4 GPUs asked, %d used) = %v, want %v", used, got, want)
		}
	}
	if GPUsBilled(0, 0) != 1 || GPUsBilled(2, 1) != 1 || GPUsBilled(2, 3) != 2 {
		t.Error("GPUsBilled")
	}
}

// The ETA during training adds the stages after it (evaluation, saving,
// upload) from the job's estimate, with the validation passes rescaled by
// the measured throughput; after training the trainer's value stands.
func TestETAIncludesEvaluation(t *testing.T) {
	j := store.Job{Estimate: &estimate.Result{TokensPerSecond: 100, AfterTrainingSeconds: 90, EvalTokenSeconds: 60}}
	cases := []struct {
		stage    string
		eta, tps float64
		want     float64
	}{
		{"training", 120, 0, 210},   // 120 + 90
		{"training", 120, 100, 210}, // measured = assumed
		{"training", 120, 50, 270},  // half the throughput: validation passes take 120 s, not 60
		{"training", 120, 200, 180}, // twice: 30 s
		{"evaluating", 0, 100, 0},   // the completion time set during training stands
		{"evaluating", 15, 100, 15}, // a trainer that reports evaluation time itself
		{"training", 0, 100, 0},     // no trainer ETA yet
	}
	for _, c := range cases {
		if got := ETA(j, c.stage, c.eta, c.tps); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("ETA(%s, %v, %v) = %v, want %v", c.stage, c.eta, c.tps, got, c.want)
		}
	}
	if got := ETA(store.Job{}, "training", 120, 50); got != 120 {
		t.Errorf("a job without an estimate: %v", got)
	}
}
