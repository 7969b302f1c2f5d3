package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/agentwork"
	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/dustin/go-humanize"
	"github.com/google/uuid"
)

type exactPreflightView struct {
	preflightView
	ExactStatus          string `json:"exact_status"`
	TrainingExamplesKept int    `json:"training_examples_kept"`
}

// cliPreflight runs `brightrun-trainer preflight` on the file with the tiny model.
type cliPreflight struct {
	Examples           int `json:"examples"`
	KeptExamples       int `json:"kept_examples"`
	DroppedExamples    int `json:"dropped_examples"`
	TruncatedExamples  int `json:"truncated_examples"`
	ValidationExamples int `json:"validation_examples"`
	Train              struct {
		KeptExamples    int   `json:"kept_examples"`
		Tokens          int64 `json:"tokens"`
		AssistantTokens int64 `json:"assistant_tokens"`
	} `json:"train"`
	Validation struct {
		KeptExamples int   `json:"kept_examples"`
		Tokens       int64 `json:"tokens"`
	} `json:"validation"`
}

func runCLIPreflight(t *testing.T, te trainerEnv, file string, maxSeq int) cliPreflight {
	t.Helper()
	cmd := exec.Command(te.exe, "preflight", "--data", file, "--model", tinyModel, "--max-seq-length", strconv.Itoa(maxSeq))
	cmd.Env = append(os.Environ(), "BRIGHTRUN_MODELS_DIR="+te.models, "HF_HUB_OFFLINE=1", "TOKENIZERS_PARALLELISM=false")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("brightrun-trainer preflight: %v\n%s", err, out)
	}
	var p cliPreflight
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("preflight output: %v\n%s", err, out)
	}
	return p
}

// longContextCatalog is the test catalog with the tiny model's context raised
// to 16,384 tokens (its small vocabulary makes EQ-12's longest example longer
// than 2,048 tokens; the preflight loads no weights, so the context is only
// the limit on max_seq_length).
func longContextCatalog(t *testing.T, te trainerEnv) string {
	t.Helper()
	b, err := os.ReadFile(te.catalog)
	if err != nil {
		t.Fatal(err)
	}
	var c catalog.Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for i := range c.BaseModels {
		if c.BaseModels[i].ID == tinyModel {
			c.BaseModels[i].ContextLength = 16384
		}
	}
	b, _ = json.Marshal(c)
	p := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func tinyEstimate(t *testing.T, c *testserver.Client, ds string, maxSeq int) exactPreflightView {
	t.Helper()
	var est struct {
		Preflight *exactPreflightView `json:"preflight"`
	}
	c.MustJSON("POST", "/api/jobs/estimate", map[string]any{"dataset_id": ds, "preset_id": "custom", "gpu_config": map[string]any{"gpu_type": "cpu-local", "num_gpus": 1},
		"hyperparameters": map[string]any{"base_model": tinyModel, "batch_size": 1, "max_seq_length": maxSeq}}, 200, &est)
	if est.Preflight == nil {
		t.Fatal("estimate without preflight")
	}
	return *est.Preflight
}

// TestExactPreflightRealAgent: the estimate for a dataset × model first
// says exact:false and queues a preflight; agents only get work they may do
// (a model they declared, not a launched one-job agent, only their own work
// to finish); a REAL local agent then computes the profile, and the estimate
// says exact:true with the counts `brightrun-trainer preflight` gives for the
// same file and model. Another user's copy of the same file stays
// approximate (profiles are per dataset, never shared).
func TestExactPreflightRealAgent(t *testing.T) {
	te := newTrainerEnv(t)
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		ao := agentapi.DefaultOptions
		ao.Poll, ao.MaxWait = 200*time.Millisecond, 2*time.Second
		wo := agentwork.DefaultOptions
		wo.Poll, wo.MaxWait, wo.RetryFailed = 100*time.Millisecond, 2*time.Second, 0
		s := testserver.Start(t, e, testserver.Options{Env: map[string]string{"BRIGHTRUN_CATALOG": longContextCatalog(t, te)},
			App: app.Options{AgentOptions: &ao, WorkOptions: &wo}})
		c := s.SignUp(t, "exact@example.com")
		file := testdata.Path(t, testdata.EQ12JSONL)
		ds := uploadFile(t, c, "eq12", file)
		if d := waitDataset(t, c, ds); d.Status != "ready" {
			t.Fatalf("dataset: %+v", d)
		}
		p := tinyEstimate(t, c, ds, 256)
		if p.Exact || p.ExactStatus != "queued" || !strings.HasSuffix(p.Message, "(estimated)") {
			t.Fatalf("before any agent: %+v", p)
		}

		// Agent scope, over the protocol.
		ctx := context.Background()
		agent := func(name string) *testserver.Client {
			tok, _, err := s.App.Agents.CreateAgent(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			ac := s.NewClient(t)
			ac.Bearer = tok
			return ac
		}
		claim := func(ac *testserver.Client, models ...string) *agentwork.Work {
			t.Helper()
			var ans agentwork.ClaimAnswer
			ac.MustJSON("POST", "/api/agent/work/claim", map[string]any{"kinds": []string{"preflight"}, "base_models": models, "wait_seconds": 0}, 200, &ans)
			return ans.Work
		}
		x, y := agent("x"), agent("y")
		if r := x.Do("POST", "/api/agent/work/claim", map[string]any{"kinds": []string{"export-everything"}, "base_models": []string{"*"}}); r.Status != 400 {
			t.Fatalf("unknown kind: %d %s", r.Status, r.Body)
		}
		if w := claim(x, "other/model"); w != nil {
			t.Fatalf("an agent without the model got its preflight: %+v", w)
		}
		var job struct{ Job struct{ ID string } }
		c.MustJSON("POST", "/api/jobs", map[string]any{"dataset_id": ds, "preset_id": "custom", "gpu_config": map[string]any{"gpu_type": "cpu-local", "num_gpus": 1},
			"hyperparameters": map[string]any{"base_model": tinyModel, "batch_size": 1, "max_seq_length": 2048}, "allow_truncation": true}, 201, &job)
		boundTok, boundHash := agentapi.NewAgentToken()
		if _, err := s.App.Store.LaunchCreate(store.AsSystem(ctx), store.LaunchCreateParams{ID: uuid.NewString(), JobID: job.Job.ID, Attempt: 1, Launcher: "hpc",
			Kind: "slurm", AgentName: "one-job", TokenHash: boundHash, TimeLimitSeconds: 600, At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		bound := s.NewClient(t)
		bound.Bearer = boundTok
		if w := claim(bound, "*"); w != nil {
			t.Fatalf("a launched one-job agent got agent work: %+v", w)
		}
		// (The job only exists to bind the launched agent: no agent trains it.)
		c.MustJSON("POST", "/api/jobs/"+job.Job.ID+"/cancel", nil, 200, nil)
		w := claim(x, tinyModel)
		if w == nil || w.Kind != "preflight" || w.Preflight == nil || w.Preflight.BaseModel != tinyModel || w.Preflight.Dataset.URL == "" {
			t.Fatalf("claim: %+v", w)
		}
		if again := claim(y, "*"); again != nil {
			t.Fatalf("work claimed twice: %+v", again)
		}
		done := map[string]any{"preflight": map[string]any{"examples": 1, "rows": [][4]int{{10, 2, 3, 0}}}}
		if r := y.Do("POST", "/api/agent/work/"+w.ID+"/complete", done); r.Status != 404 {
			t.Fatalf("another agent completing the work: %d %s", r.Status, r.Body)
		}
		if r := x.Do("POST", "/api/agent/work/"+w.ID+"/complete", map[string]any{"preflight": map[string]any{"examples": 2, "rows": [][4]int{{10, 2, 3, 0}}}}); r.Status != 400 {
			t.Fatalf("rows that do not match examples: %d %s", r.Status, r.Body)
		} else if _, det := r.ErrorBody(); det["preflight.rows"] == nil {
			t.Fatalf("the 400 does not name preflight.rows: %s", r.Body)
		}
		if r := x.Do("POST", "/api/agent/work/"+w.ID+"/fail", map[string]any{"message": "test: giving it back"}); r.Status != 200 {
			t.Fatalf("fail: %d %s", r.Status, r.Body)
		}

		// The real agent (no inference serving: only training and preflights).
		startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--no-serve", "--preflight-models", tinyModel)
		deadline := time.Now().Add(3 * time.Minute)
		for p = tinyEstimate(t, c, ds, 256); !p.Exact; p = tinyEstimate(t, c, ds, 256) {
			if time.Now().After(deadline) {
				t.Fatalf("no exact preflight after 3 minutes: %+v", p)
			}
			// Real-time dependency: a real agent process computes the profile
			// and posts it on its own schedule; poll the estimate.
			time.Sleep(300 * time.Millisecond)
		}
		// At 256 (every example of EQ-12 is longer under the tiny model's
		// small vocabulary) and at a length that keeps some examples whole,
		// shortens others and drops the rest.
		mixed := false
		for _, L := range []int{256, p.KeepAllMaxSeqLength / 2 / 64 * 64} {
			q := tinyEstimate(t, c, ds, L)
			cli := runCLIPreflight(t, te, file, L)
			if !q.Exact || q.ExamplesTotal != cli.Examples || q.ExamplesDropped != cli.DroppedExamples || q.ExamplesKept != cli.KeptExamples ||
				q.ExamplesTruncated+q.ExamplesDropped != cli.TruncatedExamples || q.ValidationExamplesTotal != cli.ValidationExamples ||
				q.ValidationExamplesKept != cli.Validation.KeptExamples || q.TrainingExamplesKept != cli.Train.KeptExamples {
				t.Fatalf("exact preflight at %d %+v differs from the CLI's %+v", L, q, cli)
			}
			if (L == 256 && q.ExamplesDropped == 0) || q.ExactStatus != "" || strings.Contains(q.Message, "estimated") || !strings.HasPrefix(q.Message, humanize.Comma(int64(L))+" tokens ") {
				t.Fatalf("exact preflight at %d: %+v", L, q)
			}
			mixed = mixed || (q.ExamplesTruncated > 0 && q.ExamplesKept > q.ExamplesTruncated)
			t.Logf("exact at %d: %d of %d dropped, %d more shortened, validation %d of %d kept; keeps all at %d (%s)", L, q.ExamplesDropped, q.ExamplesTotal,
				q.ExamplesTruncated, q.ValidationExamplesKept, q.ValidationExamplesTotal, q.KeepAllMaxSeqLength, q.Message)
		}
		if !mixed {
			t.Fatal("no length checked keeps some examples whole and shortens others")
		}
		all := tinyEstimate(t, c, ds, p.KeepAllMaxSeqLength)
		cliAll := runCLIPreflight(t, te, file, p.KeepAllMaxSeqLength)
		if !all.Exact || all.ExamplesTruncated != 0 || cliAll.TruncatedExamples != 0 || all.TokensPerEpoch != cliAll.Train.Tokens ||
			all.AssistantTokensPerEpoch != cliAll.Train.AssistantTokens {
			t.Fatalf("exact preflight at %d %+v differs from the CLI's %+v", p.KeepAllMaxSeqLength, all, cliAll)
		}
		if below := runCLIPreflight(t, te, file, p.KeepAllMaxSeqLength-64); below.TruncatedExamples == 0 {
			t.Fatalf("keep_all_max_seq_length %d is not the smallest multiple of 64 that keeps all", p.KeepAllMaxSeqLength)
		}

		// Another user's copy of the same file: approximate, its own preflight queued.
		c2 := s.SignUp(t, "exact-other@example.com")
		ds2 := uploadFile(t, c2, "eq12", file)
		waitDataset(t, c2, ds2)
		if q := tinyEstimate(t, c2, ds2, 256); q.Exact {
			t.Fatalf("another user's dataset got this user's exact profile: %+v", q)
		}
		if r := c2.Do("POST", "/api/jobs/estimate", map[string]any{"dataset_id": ds, "gpu_config": map[string]any{"gpu_type": "cpu-local", "num_gpus": 1},
			"hyperparameters": map[string]any{"base_model": tinyModel}}); r.Status != 404 {
			t.Fatalf("another user's estimate on this dataset: %d %s", r.Status, r.Body)
		}
	})
}
