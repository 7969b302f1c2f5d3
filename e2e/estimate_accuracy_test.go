package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
)

// TestEstimateAccuracyCPU measures how close the self-calibrated duration
// estimate is to real CPU runs on the EQ datasets (bench/estimate/run.sh;
// it reports the error, it does not assert a time), twice on fresh servers
// in the same run: with the validator's approximate token counts (agents
// without preflight) and with exact counts (an agent computes each
// dataset's preflight before its estimate). In each, run 1 on EQ-12
// calibrates (GPU type, model); the estimates of later runs on EQ-12 and
// EQ-18 are then compared with their measured durations.
func TestEstimateAccuracyCPU(t *testing.T) {
	if os.Getenv("BRIGHTRUN_BENCH") != "1" {
		t.Skip("benchmark: run bench/estimate/run.sh (BRIGHTRUN_BENCH=1)")
	}
	te := newTrainerEnv(t)
	for _, exact := range []bool{false, true} {
		mode := map[bool]string{false: "approximate", true: "exact"}[exact]
		t.Run(mode, func(t *testing.T) { estimateAccuracy(t, te, exact, mode) })
	}
}

func estimateAccuracy(t *testing.T, te trainerEnv, exact bool, mode string) {
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "acc@example.com")
	if exact {
		// One agent for the whole run: it computes the preflights and trains.
		startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--no-serve", "--preflight-models", tinyModel)
	}
	run := func(file string, epochs int) (estimated, actual float64, basis string, tps float64) {
		ds := uploadFile(t, c, file, testdata.Path(t, file))
		waitDataset(t, c, ds)
		var est struct {
			estimateView
			Preflight *exactPreflightView `json:"preflight"`
		}
		req := map[string]any{"dataset_id": ds, "preset_id": "custom", "gpu_config": map[string]any{"gpu_type": "cpu-local", "num_gpus": 1},
			"hyperparameters":  map[string]any{"base_model": tinyModel, "num_epochs": epochs, "batch_size": 4, "max_seq_length": 2048, "learning_rate": 0.001},
			"allow_truncation": true}
		c.MustJSON("POST", "/api/jobs/estimate", req, 200, &est)
		approxTokens := est.TokensUsed
		for deadline := time.Now().Add(3 * time.Minute); exact && !est.Preflight.Exact; c.MustJSON("POST", "/api/jobs/estimate", req, 200, &est) {
			if time.Now().After(deadline) {
				t.Fatalf("no exact preflight for %s", file)
			}
			time.Sleep(300 * time.Millisecond) // real-time dependency: the agent process computes the preflight
		}
		if est.Preflight == nil || est.Preflight.Exact != exact {
			t.Fatalf("%s: preflight %+v, want exact=%v", file, est.Preflight, exact)
		}
		if exact {
			// The token density the approximate estimate assumed, against the tokenizer's.
			t.Logf("TOKENS %s: approximate %d, exact %d (approximate/exact %.3f)", file, approxTokens, est.TokensUsed, float64(approxTokens)/float64(est.TokensUsed))
		}
		var created struct{ Job struct{ ID string } }
		c.MustJSON("POST", "/api/jobs", req, 201, &created)
		if !exact {
			startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--once", "--no-preflight")
		}
		st := waitJob(t, c, created.Job.ID, 10*time.Minute, func(js jobState) bool { return js.Job.Status == "completed" })
		var j struct {
			Job struct {
				StartedAt   time.Time `json:"started_at"`
				CompletedAt time.Time `json:"completed_at"`
				// The run's throughput in the estimate's token units
				// (estimated tokens ÷ the trainer's train_seconds).
				MeasuredTPS float64 `json:"measured_tokens_per_second"`
			} `json:"job"`
		}
		c.MustJSON("GET", "/api/jobs/"+st.Job.ID, nil, 200, &j)
		return est.EstimatedDurationHours * 3600, j.Job.CompletedAt.Sub(j.Job.StartedAt).Seconds(), est.Basis, j.Job.MeasuredTPS
	}
	// The estimate's throughput unit must mean the same on every dataset:
	// tokens/s in estimate units of each run relative to the calibration run
	// (1.00 when the token counts match what the trainer processes; machine
	// load moves all runs alike far more than it moves this ratio).
	e0, a0, b0, tps0 := run(testdata.EQ12JSONL, 2)
	t.Logf("calibration run EQ-12 (%s): estimated %.0f s, actual %.0f s, %.0f tokens/s in estimate units (%s)", mode, e0, a0, tps0, b0)
	for _, tc := range []struct {
		file   string
		epochs int
	}{{testdata.EQ12JSON, 3}, {testdata.EQ18JSON, 2}} {
		e, a, b, tps := run(tc.file, tc.epochs)
		t.Logf("RESULT %s %s × %d epochs: estimated %.0f s, actual %.0f s, error %+.1f%%, tokens/s in estimate units %.0f = %.2f × the calibration run's (%s)",
			mode, tc.file, tc.epochs, e, a, 100*(e-a)/a, tps, tps/tps0, b)
	}
}
