package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.GPUs) < 7 || len(c.BaseModels) != 5 || len(c.Presets) != 5 {
		t.Fatalf("unexpected sizes: %d gpus, %d models, %d presets", len(c.GPUs), len(c.BaseModels), len(c.Presets))
	}
	c2, err := Load("")
	if err != nil || len(c2.GPUs) != len(c.GPUs) {
		t.Fatalf("Load(\"\"): %v", err)
	}
}

// The CPU quick start (issue 14): the local demo model, short enough to
// finish in minutes on a small CPU (measurement: bench/trainer/README.md).
func TestQuickDemoPresetRunsTheLocalModel(t *testing.T) {
	c := Default()
	p, ok := c.Preset(QuickDemoPresetID)
	if !ok {
		t.Fatalf("preset %s missing", QuickDemoPresetID)
	}
	m, ok := c.Model(p.Hyperparameters.BaseModel)
	if !ok || !m.Local {
		t.Fatalf("quick demo base model %q is not a local (CPU) model", p.Hyperparameters.BaseModel)
	}
	if p.Name != "Quick demo (CPU)" || p.Hyperparameters.LoraDropout != 0 || p.Hyperparameters.NumEpochs > 2 {
		t.Fatalf("quick demo preset = %+v", p)
	}
}

func TestPresetsMatchSpec(t *testing.T) {
	c := Default()
	want := map[string]Hyperparameters{
		"conservative": {LearningRate: 1e-4, BatchSize: 4, NumEpochs: 3, LoraRank: 8, LoraAlpha: 16, LoraDropout: 0.05},
		"balanced":     {LearningRate: 2e-4, BatchSize: 8, NumEpochs: 5, LoraRank: 16, LoraAlpha: 32, LoraDropout: 0.1},
		"aggressive":   {LearningRate: 3e-4, BatchSize: 16, NumEpochs: 10, LoraRank: 32, LoraAlpha: 64, LoraDropout: 0.1},
		"custom":       {LearningRate: 2e-4, BatchSize: 8, NumEpochs: 5, LoraRank: 16, LoraAlpha: 32, LoraDropout: 0.1},
	}
	for id, w := range want {
		p, ok := c.Preset(id)
		if !ok {
			t.Fatalf("preset %s missing", id)
		}
		h := p.Hyperparameters
		if h.BaseModel != "mistralai/Mistral-7B-v0.1" || h.LearningRate != w.LearningRate || h.BatchSize != w.BatchSize ||
			h.NumEpochs != w.NumEpochs || h.LoraRank != w.LoraRank || h.LoraAlpha != w.LoraAlpha || h.LoraDropout != w.LoraDropout {
			t.Errorf("preset %s = %+v, want %+v", id, h, w)
		}
		if h.MaxSeqLength != 2048 || h.GradientAccumulationSteps != 1 {
			t.Errorf("preset %s defaults: %+v", id, h)
		}
		if msgs := ValidateHyperparameters(h); len(msgs) != 0 {
			t.Errorf("preset %s invalid: %v", id, msgs)
		}
	}
}

func TestLookups(t *testing.T) {
	c := Default()
	if m, ok := c.Model("HuggingFaceTB/SmolLM2-135M-Instruct"); !ok || !m.Local || m.Arch.KVDim() != 192 {
		t.Fatalf("smollm2: %+v %v", m, ok)
	}
	if _, ok := c.Model("nope/nope"); ok {
		t.Fatal("unknown model found")
	}
	for _, key := range []string{"nvidia-a100-80gb", "A100-80GB", "a100-80gb"} {
		if g, ok := c.GPU(key); !ok || g.ID != "nvidia-a100-80gb" || g.MemoryGB != 80 {
			t.Fatalf("GPU(%q) = %+v %v", key, g, ok)
		}
	}
	if g, ok := c.GPU("cpu-local"); !ok || !g.CPU || g.CostPerGPUHour != 0 || !g.AllowsCount(1) || g.AllowsCount(2) {
		t.Fatalf("cpu: %+v", g)
	}
	for _, m := range c.BaseModels {
		if m.TrustRemoteCode {
			t.Errorf("%s allows remote code", m.ID)
		}
	}
}

func TestValidateHyperparametersEveryField(t *testing.T) {
	base := Default().Presets[1].Hyperparameters
	cases := []struct {
		field string
		mut   func(*Hyperparameters)
		msg   string
	}{
		{"base_model", func(h *Hyperparameters) { h.BaseModel = "" }, "is required"},
		{"learning_rate", func(h *Hyperparameters) { h.LearningRate = 2e-3 }, "must be between 1e-06 and 0.001"},
		{"learning_rate", func(h *Hyperparameters) { h.LearningRate = 1e-7 }, "must be between 1e-06 and 0.001"},
		{"batch_size", func(h *Hyperparameters) { h.BatchSize = 0 }, "must be between 1 and 128"},
		{"batch_size", func(h *Hyperparameters) { h.BatchSize = 129 }, "must be between 1 and 128"},
		{"num_epochs", func(h *Hyperparameters) { h.NumEpochs = 51 }, "must be between 1 and 50"},
		{"lora_rank", func(h *Hyperparameters) { h.LoraRank = 257 }, "must be between 1 and 256"},
		{"lora_alpha", func(h *Hyperparameters) { h.LoraAlpha = 0 }, "must be between 1 and 512"},
		{"lora_dropout", func(h *Hyperparameters) { h.LoraDropout = 0.6 }, "must be between 0 and 0.5"},
		{"lora_dropout", func(h *Hyperparameters) { h.LoraDropout = -0.1 }, "must be between 0 and 0.5"},
		{"warmup_steps", func(h *Hyperparameters) { h.WarmupSteps = 10001 }, "must be between 0 and 10000"},
		{"weight_decay", func(h *Hyperparameters) { h.WeightDecay = 1.5 }, "must be between 0 and 1"},
		{"max_seq_length", func(h *Hyperparameters) { h.MaxSeqLength = 32 }, "must be between 64 and 32768"},
		{"gradient_accumulation_steps", func(h *Hyperparameters) { h.GradientAccumulationSteps = 65 }, "must be between 1 and 64"},
	}
	for _, tc := range cases {
		h := base
		tc.mut(&h)
		got := ValidateHyperparameters(h)
		if len(got) != 1 || got[tc.field] != tc.msg {
			t.Errorf("%s: got %v, want {%s: %s}", tc.field, got, tc.field, tc.msg)
		}
	}
	// Edges are inclusive.
	h := base
	h.LearningRate, h.NumEpochs, h.LoraRank, h.LoraAlpha, h.LoraDropout, h.BatchSize = 1e-3, 50, 256, 512, 0.5, 128
	h.WarmupSteps, h.WeightDecay, h.MaxSeqLength, h.GradientAccumulationSteps = 10000, 1, 32768, 64
	if got := ValidateHyperparameters(h); len(got) != 0 {
		t.Errorf("upper edges: %v", got)
	}
}

func TestValidateForModel(t *testing.T) {
	c := Default()
	smol, _ := c.Model("HuggingFaceTB/SmolLM2-135M-Instruct")
	h := c.Presets[1].Hyperparameters
	h.BaseModel = smol.ID
	if got := ValidateForModel(h, smol); len(got) != 0 {
		t.Fatal(got)
	}
	h.MaxSeqLength = 16384
	got := ValidateForModel(h, smol)
	if !strings.HasPrefix(got["max_seq_length"], "must be between 64 and 8192") {
		t.Errorf("context: %v", got)
	}
	h.MaxSeqLength = 2048
	h.LoraRank = 200
	if got := ValidateForModel(h, smol); !strings.HasPrefix(got["lora_rank"], "must be between 1 and 192") {
		t.Errorf("rank: %v", got)
	}
	h.LoraRank = 16
	h.BaseModel = "other"
	if got := ValidateForModel(h, smol); got["base_model"] == "" {
		t.Error("mismatched base_model accepted")
	}
	h.BaseModel = "acme/unknown"
	if got := c.ValidateJob(h); !strings.Contains(got["base_model"], "not in the model catalog") {
		t.Errorf("ValidateJob: %v", got)
	}
	h.BaseModel = smol.ID
	if got := c.ValidateJob(h); len(got) != 0 {
		t.Errorf("ValidateJob: %v", got)
	}
}

func TestResolve(t *testing.T) {
	c := Default()
	h := Hyperparameters{LearningRate: 5e-5}
	c.ResolveHyperparameters("aggressive", &h)
	if h.LearningRate != 5e-5 || h.BatchSize != 16 || h.NumEpochs != 10 || h.LoraRank != 32 || h.MaxSeqLength != 2048 ||
		h.GradientAccumulationSteps != 1 || h.BaseModel != "mistralai/Mistral-7B-v0.1" {
		t.Fatalf("resolved %+v", h)
	}
	h = Hyperparameters{}
	c.ResolveHyperparameters("no-such", &h)
	if h.BatchSize != 8 || h.LoraDropout != 0 {
		t.Fatalf("balanced fallback %+v", h)
	}
	r, err := c.ResolveJSON("conservative", json.RawMessage(`{"lora_dropout": 0, "num_epochs": 7}`))
	if err != nil || r.LoraDropout != 0 || r.NumEpochs != 7 || r.LoraRank != 8 || r.LearningRate != 1e-4 {
		t.Fatalf("ResolveJSON %+v %v", r, err)
	}
	r, err = c.ResolveJSON("balanced", nil)
	if err != nil || r.LoraDropout != 0.1 || r.WeightDecay != 0.01 {
		t.Fatalf("ResolveJSON nil %+v %v", r, err)
	}
	if _, err := c.ResolveJSON("balanced", json.RawMessage(`{"lora_rnak": 4}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func writeCatalog(t *testing.T, mutate func(map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(DefaultJSON(), &m); err != nil {
		t.Fatal(err)
	}
	mutate(m)
	b, _ := json.Marshal(m)
	p := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func gpuAt(m map[string]any, i int) map[string]any { return m["gpus"].([]any)[i].(map[string]any) }

func TestLoadOperatorFile(t *testing.T) {
	p := writeCatalog(t, func(m map[string]any) { gpuAt(m, 6)["cost_per_gpu_hour"] = 2.49 })
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := c.GPU("H100-80GB"); g.CostPerGPUHour != 2.49 {
		t.Fatalf("override not applied: %v", g.CostPerGPUHour)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestLoadRefusals(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"unknown top", func(m map[string]any) { m["gpu"] = 1 }, "unknown field $.gpu"},
		{"unknown nested", func(m map[string]any) { gpuAt(m, 2)["price"] = 1 }, "unknown field $.gpus[2].price"},
		{"unknown in arch", func(m map[string]any) {
			m["base_models"].([]any)[0].(map[string]any)["arch"].(map[string]any)["layer"] = 3
		}, "unknown field $.base_models[0].arch.layer"},
		{"unknown in preset hp", func(m map[string]any) {
			m["presets"].([]any)[0].(map[string]any)["hyperparameters"].(map[string]any)["rank"] = 3
		}, "unknown field $.presets[0].hyperparameters.rank"},
		{"dup gpu id", func(m map[string]any) { gpuAt(m, 2)["id"] = gpuAt(m, 1)["id"] }, "gpus[2].id: duplicate id"},
		{"dup gpu type", func(m map[string]any) { gpuAt(m, 2)["gpu_type"] = "a10g-24gb" }, "gpus[2].gpu_type: duplicate"},
		{"negative price", func(m map[string]any) { gpuAt(m, 1)["cost_per_gpu_hour"] = -1 }, "gpus[1].cost_per_gpu_hour: must be ≥ 0"},
		{"count 9", func(m map[string]any) { gpuAt(m, 1)["allowed_counts"] = []int{1, 9} }, "gpus[1].allowed_counts[1]: 9 is not between 1 and 8"},
		{"count 0", func(m map[string]any) { gpuAt(m, 1)["allowed_counts"] = []int{0} }, "not between 1 and 8"},
		{"no counts", func(m map[string]any) { gpuAt(m, 1)["allowed_counts"] = []int{} }, "at least one count"},
		{"cpu 2", func(m map[string]any) { gpuAt(m, 0)["allowed_counts"] = []int{1, 2} }, "exactly [1]"},
		{"zero memory", func(m map[string]any) { gpuAt(m, 1)["memory_gb"] = 0 }, "memory_gb: must be > 0"},
		{"preset model", func(m map[string]any) {
			m["presets"].([]any)[0].(map[string]any)["hyperparameters"].(map[string]any)["base_model"] = "x/y"
		}, "presets[0].hyperparameters.base_model"},
		{"preset range", func(m map[string]any) {
			m["presets"].([]any)[1].(map[string]any)["hyperparameters"].(map[string]any)["num_epochs"] = 99
		}, "presets[1].hyperparameters.num_epochs: must be between 1 and 50"},
		{"dup model", func(m map[string]any) {
			ms := m["base_models"].([]any)
			ms[1].(map[string]any)["id"] = ms[0].(map[string]any)["id"]
		}, "base_models[1].id: duplicate"},
		{"bad type", func(m map[string]any) { gpuAt(m, 1)["memory_gb"] = "lots" }, "memory_gb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeCatalog(t, tc.mutate))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"presets": [`), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("truncated: %v", err)
	}
}

func TestDefaultIsACopy(t *testing.T) {
	a := Default()
	a.GPUs[0].CostPerGPUHour = 99
	if Default().GPUs[0].CostPerGPUHour == 99 {
		t.Fatal("Default shares state")
	}
}

// The local CPU option follows the server's own CPU: bf16 weights where the
// host has bf16 matrix units (the trainer's own choice there), fp32 sizing
// where it has not; an explicit cpu_bf16_weights stays, GPU options are not
// touched, and the field is refused on a GPU option.
func TestApplyHostCPU(t *testing.T) {
	local := func(c *Catalog) GPU {
		g, ok := c.GPU("cpu-local")
		if !ok {
			t.Fatal("no cpu-local in the default catalog")
		}
		return g
	}
	for _, host := range []bool{false, true} {
		c := Default()
		if !local(c).CPUBF16FromHost {
			t.Fatal("the default cpu-local option does not follow the host")
		}
		before := append([]GPU(nil), c.GPUs...)
		c.ApplyHostCPU(host)
		if got := local(c).CPUBF16Weights; got != host {
			t.Errorf("host bf16 %v: cpu-local cpu_bf16_weights = %v", host, got)
		}
		for i, g := range c.GPUs {
			if !g.CPU && g.CPUBF16Weights != before[i].CPUBF16Weights {
				t.Errorf("%s changed", g.ID)
			}
		}
	}
	c := Default()
	for i := range c.GPUs {
		if c.GPUs[i].CPU {
			c.GPUs[i].CPUBF16Weights = true // the operator says so: a host without bf16 units does not undo it
		}
	}
	c.ApplyHostCPU(false)
	if !local(c).CPUBF16Weights {
		t.Error("an explicit cpu_bf16_weights was overridden by the host")
	}
	for i := range c.GPUs {
		if !c.GPUs[i].CPU {
			c.GPUs[i].CPUBF16FromHost = true
			break
		}
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "cpu_bf16_weights_from_host: only for a CPU option") {
		t.Fatalf("err = %v", err)
	}
}
