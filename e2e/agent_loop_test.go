package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

const tinyModel = "brightrun-test/tiny-llama"

// trainerEnv finds the installed trainer (make setup) and builds a tiny
// random Llama as a local base model. Without the trainer the test skips,
// unless BRIGHTRUN_REQUIRE_TRAINER=1 (CI).
type trainerEnv struct {
	exe, models, catalog string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

func newTrainerEnv(t *testing.T) trainerEnv {
	t.Helper()
	exe := os.Getenv("BRIGHTRUN_TRAINER")
	if exe == "" {
		exe = filepath.Join(repoRoot(), ".venv", "bin", "brightrun-trainer")
	}
	if _, err := os.Stat(exe); err != nil {
		if os.Getenv("BRIGHTRUN_REQUIRE_TRAINER") == "1" {
			t.Fatalf("trainer not installed at %s but BRIGHTRUN_REQUIRE_TRAINER=1", exe)
		}
		t.Skipf("trainer not installed at %s (make setup): skipping the real-training loop", exe)
	}
	dir := t.TempDir()
	env := trainerEnv{exe: exe, models: filepath.Join(dir, "models"), catalog: filepath.Join(dir, "catalog.json")}
	out, err := exec.Command(exe, "make-tiny-model", "--out", filepath.Join(env.models, tinyModel)).CombinedOutput()
	if err != nil {
		t.Fatalf("make-tiny-model: %v\n%s", err, out)
	}
	c := catalog.Default()
	c.BaseModels = append(c.BaseModels, catalog.BaseModel{ID: tinyModel, DisplayName: "Tiny Llama (tests)", Parameters: 200_000, ContextLength: 2048,
		HasChatTemplate: true, License: "test", Local: true, SizeClass: "0.1b", Arch: catalog.Arch{Layers: 2, Hidden: 64, Heads: 4, KVHeads: 4, Intermediate: 128, Vocab: 2000}})
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(env.catalog, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return env
}

// startAgent runs `brightrun-trainer agent` (CPU) against the server, once
// when asked.
func (te trainerEnv) startAgent(t *testing.T, s *testserver.Server, once bool) *exec.Cmd {
	t.Helper()
	var extra []string
	if once {
		extra = append(extra, "--once")
	}
	return startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, extra...)
}

// startAgentWith runs `brightrun-trainer agent --gpu-type CPU` with extra
// arguments, its token made by create; the log is shown when the test fails.
func startAgentWith(t *testing.T, te trainerEnv, url string, create func(context.Context, string) (string, store.Agent, error), extra ...string) *exec.Cmd {
	t.Helper()
	tok, _, err := create(context.Background(), "test-agent")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"agent", "--server", url, "--token", tok, "--gpu-type", "CPU", "--work-dir", t.TempDir(), "--wait-seconds", "2"}, extra...)
	cmd := exec.Command(te.exe, args...)
	// One intra-op thread: the tiny test model gains nothing from more, and on
	// CI's two busy cores each extra OpenMP thread waits for a time slice at
	// every barrier (a 10-step job: 23 s with one thread, 37 s with two).
	cmd.Env = append(os.Environ(), "BRIGHTRUN_MODELS_DIR="+te.models, "HF_HUB_OFFLINE=1", "PYTHONUNBUFFERED=1", "TOKENIZERS_PARALLELISM=false",
		"OMP_NUM_THREADS=1")
	logf, _ := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("agent log:\n%s", lastLines(string(b), 80))
		}
	})
	return cmd
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func loopServer(t *testing.T, e testdb.Engine, te trainerEnv) *testserver.Server {
	ao := agentapi.DefaultOptions
	ao.Lease, ao.Heartbeat, ao.Poll, ao.MaxWait, ao.CheckpointAt = 4*time.Second, time.Second, 200*time.Millisecond, 2*time.Second, 4
	return testserver.Start(t, e, testserver.Options{Env: map[string]string{"BRIGHTRUN_CATALOG": te.catalog}, App: app.Options{AgentOptions: &ao}})
}

type jobState struct {
	Job struct {
		ID, Status, CurrentStage string
		CurrentStep              int      `json:"current_step"`
		TotalSteps               *int     `json:"total_steps"`
		RetryCount               int      `json:"retry_count"`
		FinalCost                *float64 `json:"final_cost"`
		ArtifactID               *string  `json:"artifact_id"`
		ErrorMessage             *string  `json:"error_message"`
	} `json:"job"`
	Metrics     []store.MetricPoint `json:"metrics"`
	CostRecords []store.CostRecord  `json:"cost_records"`
	Events      []store.JobEvent    `json:"events"`
}

func waitJob(t *testing.T, c *testserver.Client, id string, timeout time.Duration, done func(jobState) bool) jobState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st jobState
		c.MustJSON("GET", "/api/jobs/"+id, nil, 200, &st)
		if done(st) {
			return st
		}
		errMsg := ""
		if st.Job.ErrorMessage != nil {
			errMsg = *st.Job.ErrorMessage
		}
		if st.Job.Status == "failed" {
			t.Fatalf("job %s failed: %s", id, errMsg)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: timed out in status %s stage %s step %d (error %q)", id, st.Job.Status, st.Job.CurrentStage, st.Job.CurrentStep, errMsg)
		}
		// Real-time dependency: the job is trained by a real trainer process,
		// which reports over HTTP on its own schedule; poll its state.
		time.Sleep(200 * time.Millisecond)
	}
}

func createTinyJob(t *testing.T, c *testserver.Client, ds string, epochs int) string {
	var created struct{ Job struct{ ID string } }
	c.MustJSON("POST", "/api/jobs", map[string]any{"dataset_id": ds, "preset_id": "custom", "gpu_config": map[string]any{"gpu_type": "cpu-local", "num_gpus": 1},
		"hyperparameters": map[string]any{"base_model": tinyModel, "num_epochs": epochs, "batch_size": 4, "max_seq_length": 2048, "learning_rate": 0.001}}, 201, &created)
	return created.Job.ID
}

// TestJobLoopRealTrainer: a job on the real EQ-12 data, claimed by the real
// trainer agent, trains a tiny model for real, streams metrics and
// completes; the adapter is in storage and loads with PEFT; cost and
// notifications exist. On both database engines.
func TestJobLoopRealTrainer(t *testing.T) {
	te := newTrainerEnv(t)
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := loopServer(t, e, te)
		c := s.SignUp(t, "loop@example.com")
		ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
		waitDataset(t, c, ds)
		id := createTinyJob(t, c, ds, 1)
		te.startAgent(t, s, true)
		st := waitJob(t, c, id, 4*time.Minute, func(s jobState) bool { return s.Job.Status == "completed" || s.Job.Status == "failed" })
		if st.Job.Status != "completed" || st.Job.ArtifactID == nil || st.Job.FinalCost == nil {
			t.Fatalf("job: %+v", st.Job)
		}
		if len(st.Metrics) == 0 || st.Metrics[len(st.Metrics)-1].Step != *st.Job.TotalSteps {
			t.Fatalf("metrics: %d points, total steps %v", len(st.Metrics), st.Job.TotalSteps)
		}
		if len(st.CostRecords) != 1 || st.CostRecords[0].CostType != "compute" {
			t.Fatalf("cost records: %+v", st.CostRecords)
		}
		var notes struct{ Notifications []struct{ Type string } }
		c.MustJSON("GET", "/api/notifications?limit=20", nil, 200, &notes)
		types := map[string]bool{}
		for _, n := range notes.Notifications {
			types[n.Type] = true
		}
		for _, want := range []string{"job_started", "job_completed", "artifact_ready"} {
			if !types[want] {
				t.Errorf("missing notification %s: %v", want, types)
			}
		}
		// The adapter files are in storage; download them and load with PEFT.
		dir := t.TempDir()
		prefix := c.UserID + "/" + id + "/adapter/"
		for _, name := range []string{"adapter_config.json", "adapter_model.safetensors", "eval.json"} {
			rc, err := s.App.Storage.Open(context.Background(), storage.BucketModels, prefix+name)
			if err != nil {
				t.Fatalf("%s not in storage: %v", name, err)
			}
			f, _ := os.Create(filepath.Join(dir, name))
			_, _ = io.Copy(f, rc)
			rc.Close()
			f.Close()
		}
		py := filepath.Join(filepath.Dir(te.exe), "python")
		script := `import sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
m = PeftModel.from_pretrained(base, sys.argv[2])
print("loaded", sum(p.numel() for n, p in m.named_parameters() if "lora_" in n))`
		out, err := exec.Command(py, "-c", script, filepath.Join(te.models, tinyModel), dir).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "loaded") {
			t.Fatalf("PeftModel.from_pretrained: %v\n%s", err, lastLines(string(out), 20))
		}
		checkModelDownloads(t, s, c, *st.Job.ArtifactID, dir)
	})
}

// checkModelDownloads: the model is listed; its signed download URLs give
// bytes identical to what the trainer uploaded; the .tar.gz holds the adapter.
func checkModelDownloads(t *testing.T, s *testserver.Server, c *testserver.Client, modelID, trainerDir string) {
	t.Helper()
	var list struct {
		Models []struct {
			ID     string
			Rating *struct{ Stars int }
		}
		Total int
	}
	c.MustJSON("GET", "/api/models?sort=quality", nil, 200, &list)
	if list.Total != 1 || list.Models[0].ID != modelID || list.Models[0].Rating == nil {
		t.Fatalf("models: %+v", list)
	}
	checkModelDocuments(t, c, modelID)
	var dl struct {
		URLs []struct{ Name, URL string } `json:"urls"`
	}
	c.MustJSON("POST", "/api/models/"+modelID+"/download", map[string]any{"files": []string{"adapter_model.safetensors"}}, 200, &dl)
	res, err := http.Get(dl.URLs[0].URL)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, res)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want, _ := os.ReadFile(filepath.Join(trainerDir, "adapter_model.safetensors"))
	if !bytes.Equal(got, want) || len(got) == 0 {
		t.Fatalf("downloaded %d bytes differ from the %d stored", len(got), len(want))
	}
	// A signed URL is scoped to its object.
	other := strings.Replace(dl.URLs[0].URL, "adapter_model.safetensors", "adapter_config.json", 1)
	if r, err := http.Get(other); err != nil || r.StatusCode != 403 {
		t.Fatalf("signed URL reused for another object: %v %v", err, r.StatusCode)
	}
	r := c.Do("GET", "/api/models/"+modelID+"/archive", nil)
	gz, err := gzip.NewReader(bytes.NewReader(r.Body))
	if r.Status != 200 || err != nil {
		t.Fatalf("archive: %d %v", r.Status, err)
	}
	tr := tar.NewReader(gz)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	if !names["adapter/adapter_model.safetensors"] || !names["adapter/adapter_config.json"] {
		t.Fatalf("archive holds %v", names)
	}
}

// checkModelDocuments: the model keeps the real trainer's run summary, its
// quality metrics and configuration as typed documents, and its page shows
// them.
func checkModelDocuments(t *testing.T, c *testserver.Client, modelID string) {
	t.Helper()
	var got struct {
		Model struct {
			Quality       jobdoc.Quality       `json:"quality_metrics"`
			Summary       jobdoc.Summary       `json:"training_summary"`
			Configuration jobdoc.Configuration `json:"configuration"`
			Artifacts     jobdoc.Artifacts     `json:"artifacts"`
		} `json:"model"`
	}
	c.MustJSON("GET", "/api/models/"+modelID, nil, 200, &got)
	m := got.Model
	if s := m.Summary; s.StepsCompleted == nil || *s.StepsCompleted < 1 || s.TokensTrained == nil || *s.TokensTrained < 1 || s.Truncation == nil ||
		s.Truncation.Train == nil || s.Truncation.Train.Examples < 1 || s.Attempts == nil || *s.Attempts != 1 || s.WorldSizeOrZero() != 1 {
		t.Fatalf("training summary: %+v", s)
	}
	if q := m.Quality; q.FinalTrainingLoss == nil || q.InitialTrainingLoss == nil || q.FinalValidationLoss == nil || q.PerplexityImprovementPct == nil || q.Samples == nil {
		t.Fatalf("quality metrics: %+v", q)
	}
	if m.Configuration.Hyperparameters.BaseModel != tinyModel || m.Configuration.GPUConfig.GPUType == "" || m.Artifacts.Eval == nil || len(m.Artifacts.Files) < 2 {
		t.Fatalf("configuration %+v, artifacts %+v", m.Configuration, m.Artifacts)
	}
	page := c.Do("GET", "/models/"+modelID, nil)
	if want := fmt.Sprintf("<td class=\"mono\">%d</td>", *m.Summary.TokensTrained); page.Status != 200 || !strings.Contains(string(page.Body), want) {
		t.Fatalf("model page %d lacks %s", page.Status, want)
	}
}

// TestJobAgentKilledResumes: the agent process is killed mid-training; the
// lease expires, the job is requeued and a new agent resumes it from the
// last checkpoint (the step count continues) and completes it.
func TestJobAgentKilledResumes(t *testing.T) {
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "kill@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 3)
	first := te.startAgent(t, s, false)
	// Wait for a registered checkpoint, then kill the agent hard.
	waitJob(t, c, id, 3*time.Minute, func(js jobState) bool {
		e, err := s.App.Store.JobExec(store.AsSystem(context.Background()), id)
		return err == nil && e.Checkpoint != nil && js.Job.Status == "running"
	})
	_ = first.Process.Signal(syscall.SIGKILL)
	_, _ = first.Process.Wait()
	st := waitJob(t, c, id, time.Minute, func(js jobState) bool { return js.Job.Status == "queued" })
	if st.Job.RetryCount != 1 {
		t.Fatalf("after the lease expired: %+v", st.Job)
	}
	te.startAgent(t, s, true)
	st = waitJob(t, c, id, 4*time.Minute, func(js jobState) bool { return js.Job.Status == "completed" || js.Job.Status == "failed" })
	if st.Job.Status != "completed" {
		t.Fatalf("resumed job: %+v", st.Job)
	}
	resumed := false
	for _, ev := range st.Events {
		if ev.Attempt == 2 && strings.Contains(ev.Message, "resuming") {
			resumed = true
		}
	}
	if !resumed {
		t.Fatalf("attempt 2 did not resume from a checkpoint: %+v", st.Events)
	}
	if last := st.Metrics[len(st.Metrics)-1].Step; last != *st.Job.TotalSteps {
		t.Fatalf("last step %d, want %d", last, *st.Job.TotalSteps)
	}
}

// TestJobCancelMidTraining: cancelling a running job stops the agent within
// a step; the job is cancelled and its time is billed.
func TestJobCancelMidTraining(t *testing.T) {
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "cancel@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 5)
	te.startAgent(t, s, true)
	waitJob(t, c, id, 3*time.Minute, func(js jobState) bool { return js.Job.Status == "running" && js.Job.CurrentStep >= 2 })
	c.MustJSON("POST", "/api/jobs/"+id+"/cancel", nil, 200, nil)
	st := waitJob(t, c, id, time.Minute, func(js jobState) bool { return js.Job.Status == "cancelled" })
	if st.Job.FinalCost == nil || len(st.CostRecords) != 1 || st.Job.CurrentStep >= *st.Job.TotalSteps {
		t.Fatalf("cancelled job: %+v records %d", st.Job, len(st.CostRecords))
	}
}

// TestLocalAgentRunsJob: `brightrun serve`'s embedded default starts a local
// trainer agent as a child process, which runs a queued job to completion.
func TestLocalAgentRunsJob(t *testing.T) {
	te := newTrainerEnv(t)
	t.Setenv("BRIGHTRUN_MODELS_DIR", te.models) // inherited by the child agent
	ao := agentapi.DefaultOptions
	ao.Heartbeat, ao.Poll, ao.MaxWait = time.Second, 200*time.Millisecond, 2*time.Second
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{App: app.Options{AgentOptions: &ao},
		Env: map[string]string{"BRIGHTRUN_CATALOG": te.catalog, "BRIGHTRUN_LOCAL_AGENT": "true", "BRIGHTRUN_TRAINER": te.exe}})
	c := s.SignUp(t, "local@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 1)
	st := waitJob(t, c, id, 4*time.Minute, func(js jobState) bool { return js.Job.Status == "completed" })
	if st.Job.ArtifactID == nil {
		t.Fatalf("no artifact: %+v", st.Job)
	}
}
