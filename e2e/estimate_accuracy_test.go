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
// it reports the error, it does not assert a time). Run 1 on EQ-12
// calibrates (GPU type, model); the estimates of later runs on EQ-12 and
// EQ-18 are then compared with their measured durations.
func TestEstimateAccuracyCPU(t *testing.T) {
	if os.Getenv("BRIGHTRUN_BENCH") != "1" {
		t.Skip("benchmark: run bench/estimate/run.sh (BRIGHTRUN_BENCH=1)")
	}
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "acc@example.com")
	run := func(file string, epochs int) (estimated, actual float64, basis string) {
		ds := uploadFile(t, c, file, testdata.Path(t, file))
		waitDataset(t, c, ds)
		var est estimateView
		req := map[string]any{"dataset_id": ds, "preset_id": "custom", "gpu_config": map[string]any{"gpu_type": "cpu-local", "num_gpus": 1},
			"hyperparameters": map[string]any{"base_model": tinyModel, "num_epochs": epochs, "batch_size": 4, "max_seq_length": 2048, "learning_rate": 0.001}}
		c.MustJSON("POST", "/api/jobs/estimate", req, 200, &est)
		id := createTinyJob(t, c, ds, epochs)
		te.startAgent(t, s, true)
		st := waitJob(t, c, id, 10*time.Minute, func(js jobState) bool { return js.Job.Status == "completed" })
		var j struct {
			Job struct {
				StartedAt   time.Time `json:"started_at"`
				CompletedAt time.Time `json:"completed_at"`
			} `json:"job"`
		}
		c.MustJSON("GET", "/api/jobs/"+st.Job.ID, nil, 200, &j)
		return est.EstimatedDurationHours * 3600, j.Job.CompletedAt.Sub(j.Job.StartedAt).Seconds(), est.Basis
	}
	e0, a0, b0 := run(testdata.EQ12JSONL, 2)
	t.Logf("calibration run EQ-12: estimated %.0f s, actual %.0f s (%s)", e0, a0, b0)
	for _, tc := range []struct {
		file   string
		epochs int
	}{{testdata.EQ12JSON, 3}, {testdata.EQ18JSON, 2}} {
		e, a, b := run(tc.file, tc.epochs)
		t.Logf("RESULT %s × %d epochs: estimated %.0f s, actual %.0f s, error %+.1f%% (%s)", tc.file, tc.epochs, e, a, 100*(e-a)/a, b)
	}
}
