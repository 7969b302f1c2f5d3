package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

// TestTwoGPUJobRealTrainer: a job for 2 GPUs is only handed to an agent that
// runs distributed jobs; its claim carries num_gpus; the real trainer agent
// trains it as 2 processes (gloo on this CPU machine, one process per "GPU"),
// completes it, and it is billed for the 2 GPUs it ran on.
//
// The catalog only offers 1 process on the CPU, so the 2-GPU CPU job is
// written to the store directly (priced at $3.60 per GPU-hour).
func TestTwoGPUJobRealTrainer(t *testing.T) {
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "twogpu@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	ctx := context.Background()
	j, err := s.App.Store.JobCreate(store.WithUser(ctx, c.UserID), store.JobCreateParams{At: time.Now().UTC(), ID: uuid.NewString(), UserID: c.UserID,
		DatasetID: ds, PresetID: "custom",
		Hyperparameters: catalog.Hyperparameters{BaseModel: tinyModel, NumEpochs: 1, BatchSize: 4, MaxSeqLength: 2048, LearningRate: 0.001, LoraRank: 8, LoraAlpha: 16, GradientAccumulationSteps: 1},
		GPUConfig:       fixtureDoc[jobdoc.GPUConfig](t, `{"gpu_type":"CPU","num_gpus":2,"cost_per_gpu_hour":3.6}`), TotalEpochs: 1, TotalSteps: 10,
		EstimatedTotalCost: 1, EstimatedCompletionAt: time.Now().Add(time.Hour), BaseModel: tinyModel, GPUType: "CPU", NumGPUs: 2})
	if err != nil {
		t.Fatal(err)
	}

	// An agent that does not declare distributed training (an older trainer) is not given it, whatever its GPU count.
	tok, _, err := s.App.Agents.CreateAgent(ctx, "old-agent")
	if err != nil {
		t.Fatal(err)
	}
	old := s.NewClient(t)
	old.Bearer = tok
	var none struct{ Job *struct{ ID string } }
	old.MustJSON("POST", "/api/agent/claim", map[string]any{"agent": map[string]string{"name": "old"}, "capabilities": map[string]any{"gpu_type": "CPU", "gpu_count": 8}, "wait_seconds": 0}, 200, &none)
	if none.Job != nil {
		t.Fatalf("a 2-GPU job went to an agent without distributed training: %+v", none.Job)
	}

	startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--gpu-count", "2", "--once")
	st := waitJob(t, c, j.ID, 5*time.Minute, func(s jobState) bool { return s.Job.Status == "completed" || s.Job.Status == "failed" })
	if st.Job.Status != "completed" || st.Job.FinalCost == nil {
		msg := ""
		if st.Job.ErrorMessage != nil {
			msg = *st.Job.ErrorMessage
		}
		t.Fatalf("job %s: %s", st.Job.Status, msg)
	}
	two := false
	for _, ev := range st.Events {
		two = two || strings.Contains(ev.Message, "2 training processes")
	}
	if !two {
		t.Fatalf("no event says the job ran as 2 processes: %+v", st.Events)
	}
	if len(st.CostRecords) != 1 {
		t.Fatalf("cost records: %+v", st.CostRecords)
	}
	d := st.CostRecords[0].Details.Compute
	if d == nil || d.NumGPUs != 2 || d.RatePerHour != 7.2 {
		t.Fatalf("billed for the wrong GPUs: %+v", d)
	}
	if want := jobs.Cost(d.Seconds, 7.2); *st.Job.FinalCost < want-0.011 || *st.Job.FinalCost > want+0.011 {
		t.Fatalf("final cost %v, want %v for %v s on 2 GPUs", *st.Job.FinalCost, want, d.Seconds)
	}
	if last := st.Metrics[len(st.Metrics)-1].Step; last != *st.Job.TotalSteps {
		t.Fatalf("last step %d, want %d (the same optimizer steps as one process)", last, *st.Job.TotalSteps)
	}
}
