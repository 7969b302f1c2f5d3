package estimate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/training/catalog"
)

var cat = catalog.Default()

func model(t *testing.T, id string) catalog.BaseModel {
	t.Helper()
	m, ok := cat.Model(id)
	if !ok {
		t.Fatalf("model %s missing", id)
	}
	return m
}

func gpu(t *testing.T, id string) catalog.GPU {
	t.Helper()
	g, ok := cat.GPU(id)
	if !ok {
		t.Fatalf("gpu %s missing", id)
	}
	return g
}

func balanced(base string) catalog.Hyperparameters {
	p, _ := cat.Preset("balanced")
	h := p.Hyperparameters
	h.BaseModel = base
	return h
}

const mistral = "mistralai/Mistral-7B-v0.1"
const smol = "HuggingFaceTB/SmolLM2-135M-Instruct"

func baseInput(t *testing.T) Input {
	return Input{TrainTokens: 2_000_000, EvalTokens: 200_000, Examples: 4000, Hyper: balanced(mistral),
		Model: model(t, mistral), GPU: gpu(t, "nvidia-h100-80gb"), NumGPUs: 1}
}

func TestParamCountsMatchMeasured(t *testing.T) {
	// Counted by bench/trainer/gpu_bench.py on the real PEFT-wrapped modules.
	cases := []struct {
		id             string
		frozen, lora16 int64
	}{
		{mistral, 7_110_393_856, 41_943_040},
		{smol, 134_479_872, 4_884_480},
	}
	for _, c := range cases {
		m := model(t, c.id)
		if got := FrozenLinearParams(m.Arch); got != c.frozen {
			t.Errorf("%s frozen = %d, want %d", c.id, got, c.frozen)
		}
		if got := LoraParams(m.Arch, 16); got != c.lora16 {
			t.Errorf("%s lora = %d, want %d", c.id, got, c.lora16)
		}
	}
}

func TestActivationBytesMatchMeasured(t *testing.T) {
	// Measured on an H100 (peak allocated memory slope per token, dropout 0.1).
	cases := []struct {
		id   string
		want float64
	}{{mistral, 11.665e6}, {smol, 2.126e6}}
	for _, c := range cases {
		got := ActivationBytesPerToken(model(t, c.id).Arch, 0.1, false)
		if math.Abs(got/c.want-1) > 0.03 {
			t.Errorf("%s: %.4g bytes/token, measured %.4g", c.id, got, c.want)
		}
	}
}

func TestDefaultThroughputsMatchDerivation(t *testing.T) {
	reps := map[string]catalog.BaseModel{"7b": model(t, mistral), "8b": model(t, "meta-llama/Llama-3.1-8B-Instruct")}
	for _, g := range cat.GPUs {
		for class, m := range reps {
			v, ok := g.Throughput[class]
			if g.CPU {
				continue
			}
			if !ok {
				t.Errorf("%s has no %s figure", g.ID, class)
				continue
			}
			d := DerivedThroughput(g, m.Arch)
			if math.Abs(v-d) > 10 {
				t.Errorf("%s %s: catalog %v, derived %.1f", g.ID, class, v, d)
			}
		}
	}
	// The H100 prior agrees with the measured 6906–7257 tokens/s.
	if v := gpu(t, "H100-80GB").Throughput["7b"]; v < 6900 || v > 7260 {
		t.Errorf("H100 7b prior %v outside the measured range", v)
	}
}

func TestMemoryKnownCases(t *testing.T) {
	m := model(t, mistral)
	h := balanced(mistral) // r16, batch 8, seq 2048, dropout 0.1
	cases := []struct {
		name     string
		gpu      string
		h        func(catalog.Hyperparameters) catalog.Hyperparameters
		mean     float64
		fits     bool
		maxBatch int
	}{
		// Mistral 7B bf16 on 24 GB: the weights alone take 13.5 GB; one 2048-token row needs ~22 GB more.
		{"mistral 24GB full rows", "nvidia-a10g-24gb", nil, 0, false, 0},
		// Short examples (mean 250 tokens): batch 1 fits in 24 GB, batch 8 does not.
		{"mistral 24GB short examples", "nvidia-l4-24gb", nil, 250, false, 1},
		// 80 GB: fits with short examples (8 × 250 × 1.5 = 3000 tokens → two packed 2048-token rows).
		{"mistral 80GB short examples", "nvidia-h100-80gb", nil, 250, true, 8},
		// Mean 400 tokens → 4800 → three rows (6144 tokens, ~81 GiB measured-scale): max batch 6.
		{"mistral 80GB mean 400", "nvidia-h100-80gb", nil, 400, false, 6},
		// Full 2048-token rows × 8 is ~190 GB without checkpointing (4×2048 OOMed on a real H100; 2×2048 peaked at 58.5 GiB).
		{"mistral 80GB full rows", "nvidia-h100-80gb", nil, 0, false, 2},
		{"mistral 80GB full rows checkpointing", "nvidia-h100-80gb", func(h catalog.Hyperparameters) catalog.Hyperparameters {
			h.GradientCheckpointing = true
			return h
		}, 0, true, 0},
		{"smol cpu demo", "cpu-local", func(h catalog.Hyperparameters) catalog.Hyperparameters {
			h.BaseModel, h.BatchSize = smol, 2
			return h
		}, 500, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hh := h
			mm := m
			if c.h != nil {
				hh = c.h(h)
				mm = model(t, hh.BaseModel)
			}
			f := Memory(mm, gpu(t, c.gpu), hh, c.mean)
			if f.Fits != c.fits {
				t.Fatalf("fits = %v, want %v: %+v", f.Fits, c.fits, f)
			}
			if c.maxBatch > 0 && f.MaxBatchSize < c.maxBatch && c.fits {
				t.Errorf("max batch %d < %d", f.MaxBatchSize, c.maxBatch)
			}
			if !c.fits {
				if f.MaxBatchSize != c.maxBatch {
					t.Errorf("max batch = %d, want %d", f.MaxBatchSize, c.maxBatch)
				}
				if f.Warning == "" || !strings.Contains(f.Warning, "Does not fit") {
					t.Errorf("warning %q", f.Warning)
				}
				if c.maxBatch == 0 && !strings.Contains(f.Warning, "Even batch_size 1") {
					t.Errorf("warning %q", f.Warning)
				}
				if c.maxBatch > 0 && !strings.Contains(f.Warning, "largest batch size that fits is") {
					t.Errorf("warning %q", f.Warning)
				}
			} else if f.Warning != "" || f.RequiredGB > f.AvailableGB {
				t.Errorf("fits but %+v", f)
			}
			sum := f.WeightsGB + f.LoRAGB + f.OptimizerGB + f.ActivationsGB + f.OverheadGB
			if math.Abs(sum-f.RequiredGB) > 0.01 {
				t.Errorf("parts %.3f != required %.3f", sum, f.RequiredGB)
			}
		})
	}
	// Measured peaks on an H100 (allocated, without context): 36.26 GiB (1×2048), 58.51 GiB (2×2048),
	// 26.83 GiB (8×2048 with checkpointing). The estimate includes ~1 GiB context + 5%, so it must be above
	// the measurement and within 15%.
	for _, c := range []struct {
		batch    int
		ckpt     bool
		measured float64
	}{{1, false, 36.26}, {2, false, 58.51}, {8, true, 26.83}} {
		hh := h
		hh.BatchSize, hh.GradientCheckpointing = c.batch, c.ckpt
		f := Memory(m, gpu(t, "nvidia-h100-80gb"), hh, 0)
		if f.RequiredGB < c.measured || f.RequiredGB > c.measured*1.15 {
			t.Errorf("batch %d ckpt %v: estimate %.2f GiB vs measured %.2f", c.batch, c.ckpt, f.RequiredGB, c.measured)
		}
	}
}

func TestWarningSuggestsCheckpointing(t *testing.T) {
	h := balanced(mistral)
	f := Memory(model(t, mistral), gpu(t, "A100-40GB"), h, 0)
	if f.Fits || !f.FitsWithCheckpointing || !strings.Contains(f.Warning, "gradient checkpointing (under Advanced") {
		t.Fatalf("%+v", f)
	}
}

func TestMemoryIndependentOfGPUCount(t *testing.T) {
	in := baseInput(t)
	a := Estimate(in)
	in.NumGPUs = 8
	b := Estimate(in)
	if a.Memory != b.Memory {
		t.Fatal("per-GPU memory changed with the GPU count")
	}
}

func TestMonotonic(t *testing.T) {
	in := baseInput(t)
	prev := Estimate(in)
	for _, tok := range []int64{4_000_000, 8_000_000, 50_000_000} {
		in.TrainTokens = tok
		r := Estimate(in)
		if !(r.EstimatedDurationHours > prev.EstimatedDurationHours && r.EstimatedCost > prev.EstimatedCost) {
			t.Errorf("tokens %d: %v h $%v not above %v h $%v", tok, r.EstimatedDurationHours, r.EstimatedCost, prev.EstimatedDurationHours, prev.EstimatedCost)
		}
		prev = r
	}
	in = baseInput(t)
	prev = Estimate(in)
	for _, e := range []int{6, 10, 50} {
		in.Hyper.NumEpochs = e
		r := Estimate(in)
		if !(r.EstimatedDurationHours > prev.EstimatedDurationHours && r.EstimatedCost > prev.EstimatedCost && r.TokensUsed > prev.TokensUsed && r.TotalSteps > prev.TotalSteps) {
			t.Errorf("epochs %d not monotonic", e)
		}
		prev = r
	}
	in = baseInput(t)
	in.TrainTokens = 100_000_000
	prev = Estimate(in)
	for _, n := range []int{2, 3, 4, 5, 6, 7, 8} {
		in.NumGPUs = n
		r := Estimate(in)
		if !(r.EstimatedDurationHours < prev.EstimatedDurationHours) {
			t.Errorf("%d GPUs: %v h not below %v h", n, r.EstimatedDurationHours, prev.EstimatedDurationHours)
		}
		if !(r.GPUHours >= prev.GPUHours) {
			t.Errorf("%d GPUs: GPU-hours %v fell below %v despite scaling losses", n, r.GPUHours, prev.GPUHours)
		}
		prev = r
	}
}

func TestScalingEfficiency(t *testing.T) {
	want := map[int]float64{0: 1, 1: 1, 2: 0.92, 3: 0.90, 4: 0.88, 8: 0.85, 16: 0.85}
	for n, w := range want {
		if got := ScalingEfficiency(n); math.Abs(got-w) > 1e-9 {
			t.Errorf("eff(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestPointEstimate(t *testing.T) {
	in := baseInput(t)
	r := Estimate(in)
	// 2M tokens × 5 epochs at 7080 tokens/s = 1412 s of training.
	if math.Abs(r.TrainingHours-10_000_000.0/7080/3600) > 1e-3 {
		t.Errorf("training hours %v", r.TrainingHours)
	}
	if r.TokensUsed != 10_000_000 || r.TokensPerSecond != 7080 || r.TotalSteps != 500*5 {
		t.Errorf("%+v", r)
	}
	overheads := 0.0
	for _, k := range []string{"model_download", "model_load", "evaluation", "upload"} {
		v, ok := r.OverheadsHours[k]
		if !ok || v <= 0 {
			t.Errorf("overhead %s = %v", k, v)
		}
		overheads += v
	}
	if math.Abs(r.EstimatedDurationHours-(r.TrainingHours+overheads)) > 1e-3 {
		t.Errorf("duration %v != training %v + overheads %v", r.EstimatedDurationHours, r.TrainingHours, overheads)
	}
	if math.Abs(r.CostBreakdown.Compute-r.EstimatedDurationHours*2.99) > 1e-3 {
		t.Errorf("compute %v", r.CostBreakdown.Compute)
	}
	if math.Abs(r.EstimatedCost-(r.CostBreakdown.Compute+r.CostBreakdown.Storage+r.CostBreakdown.DataTransfer)) > 1e-3 {
		t.Errorf("total %v", r.EstimatedCost)
	}
	// Adapter: 41.9M fp32 params = 0.168 GB; storage a month at $0.023, egress at $0.09.
	if math.Abs(r.AdapterGB-0.1678) > 1e-3 || math.Abs(r.CostBreakdown.Storage-0.1678*0.023) > 1e-4 ||
		math.Abs(r.CostBreakdown.DataTransfer-0.1678*0.09) > 1e-4 {
		t.Errorf("adapter %v storage %v transfer %v", r.AdapterGB, r.CostBreakdown.Storage, r.CostBreakdown.DataTransfer)
	}
	if !strings.Contains(r.Basis, "default throughput") || r.Calibrated {
		t.Errorf("basis %q", r.Basis)
	}
	in.NumGPUs = 4
	r4 := Estimate(in)
	if math.Abs(r4.GPUHours-4*r4.EstimatedDurationHours) > 1e-3 || math.Abs(r4.CostBreakdown.Compute-r4.GPUHours*2.99) > 1e-2 {
		t.Errorf("4 GPUs: %+v", r4)
	}
	// The trainer keeps the global batch: 4 GPUs take as many optimizer steps as 1.
	if r4.TotalSteps != r.TotalSteps {
		t.Errorf("4 GPUs: %d steps, 1 GPU: %d", r4.TotalSteps, r.TotalSteps)
	}
}

func TestRangeBracketsPoint(t *testing.T) {
	cases := []*Calibration{nil, {TokensPerSecond: 5000, Runs: 1}, {TokensPerSecond: 5000, Runs: 3}, {TokensPerSecond: 9000, Runs: 12}}
	for _, cal := range cases {
		for _, gid := range []string{"cpu-local", "nvidia-l4-24gb", "nvidia-h100-80gb"} {
			in := baseInput(t)
			in.GPU, in.Calibration = gpu(t, gid), cal
			r := Estimate(in)
			if !(r.DurationRange.Low < r.EstimatedDurationHours && r.EstimatedDurationHours < r.DurationRange.High) {
				t.Errorf("%s %+v: duration %v not in %+v", gid, cal, r.EstimatedDurationHours, r.DurationRange)
			}
			if !(r.CostRange.Low <= r.EstimatedCost && r.EstimatedCost <= r.CostRange.High) {
				t.Errorf("%s %+v: cost %v not in %+v", gid, cal, r.EstimatedCost, r.CostRange)
			}
		}
	}
	in := baseInput(t)
	in.Calibration = &Calibration{TokensPerSecond: 5000, Runs: 3}
	r := Estimate(in)
	if w := (r.DurationRange.High - r.DurationRange.Low) / r.EstimatedDurationHours; math.Abs(w-0.2) > 1e-3 {
		t.Errorf("calibrated width %v, want ±10%%", w)
	}
}

func TestCalibration(t *testing.T) {
	in := baseInput(t)
	def := Estimate(in)
	in.Calibration = &Calibration{TokensPerSecond: 3540, Runs: 3}
	r := Estimate(in)
	if !strings.HasPrefix(r.Basis, "based on 3 past runs") || !r.Calibrated || r.CalibrationRuns != 3 {
		t.Fatalf("basis %q", r.Basis)
	}
	if r.TokensPerSecond != 3540 || r.TrainingHours <= def.TrainingHours*1.9 {
		t.Errorf("calibrated throughput not used: %+v", r)
	}
	in.Calibration = &Calibration{TokensPerSecond: 3540, Runs: 1}
	if r := Estimate(in); !strings.HasPrefix(r.Basis, "based on 1 past run ") {
		t.Errorf("basis %q", r.Basis)
	}
	in.Calibration = &Calibration{TokensPerSecond: 0, Runs: 4}
	if r := Estimate(in); r.Calibrated || strings.HasPrefix(r.Basis, "based on") {
		t.Errorf("zero calibration used: %q", r.Basis)
	}
}

func TestCPUDemo(t *testing.T) {
	h := balanced(smol)
	h.BatchSize = 2
	in := Input{TrainTokens: 30_000, EvalTokens: 3_000, Examples: 60, Hyper: h, Model: model(t, smol), GPU: gpu(t, "cpu-local"), NumGPUs: 4}
	r := Estimate(in)
	if r.NumGPUs != 1 || r.CostBreakdown.Compute != 0 || r.EstimatedCost > 0.001 || r.CostBreakdown.DataTransfer != 0 || r.TokensPerSecond != 100 {
		t.Errorf("%+v", r)
	}
	// 150k tokens at 100 tokens/s ≈ 25 min of training.
	if math.Abs(r.TrainingHours-150_000.0/100/3600) > 1e-3 || r.TotalSteps != 30*5 {
		t.Errorf("training %v h, steps %d", r.TrainingHours, r.TotalSteps)
	}
	if !r.Memory.Fits {
		t.Errorf("memory %+v", r.Memory)
	}
	// One example per forward on the CPU: memory does not grow with the batch,
	// so any batch size fits once one max_seq_length row does.
	h.BatchSize, h.MaxSeqLength = 32, 1024
	in.Hyper = h
	r32 := Estimate(in).Memory
	h.BatchSize = 1
	in.Hyper = h
	r1 := Estimate(in).Memory
	if r32.RequiredGB != r1.RequiredGB || r32.MicroBatchTokens != 1024 || !r32.Fits || r32.MaxBatchSize != catalog.MaxBatchSize {
		t.Errorf("cpu memory batch 32 %+v, batch 1 %+v", r32, r1)
	}
	// SmolLM2 at 1024 tokens on the fp32 sizing: ~4.8 GB of activations, ~6.5 GB in all
	// (the trainer's bf16-autocast path measured 4.8 GB peak RSS).
	if r32.ActivationsGB < 4 || r32.ActivationsGB > 5.5 || r32.RequiredGB > 8 {
		t.Errorf("cpu memory %+v", r32)
	}
	// Too long for the budget: the advice is max_seq_length, not batch size.
	g := gpu(t, "cpu-local")
	g.MemoryGB = 4
	h.MaxSeqLength = 4096
	in.Hyper, in.GPU = h, g
	m := Estimate(in).Memory
	if m.Fits || m.MaxBatchSize != 0 || !strings.Contains(m.Warning, "batch size does not change this") {
		t.Errorf("cpu too long: %+v", m)
	}
}

func TestFallbackThroughputs(t *testing.T) {
	g := gpu(t, "H100-80GB")
	delete(g.Throughput, "8b")
	m := model(t, "meta-llama/Llama-3.1-8B-Instruct")
	tps, basis := PerGPUThroughput(g, m, balanced(m.ID), nil)
	if math.Abs(tps-6718.7) > 1 || !strings.Contains(basis, "derived") {
		t.Errorf("derived %v %q", tps, basis)
	}
	cpu := gpu(t, "cpu-local")
	tps, basis = PerGPUThroughput(cpu, model(t, mistral), balanced(mistral), nil)
	if tps <= 0 || tps >= 100 || !strings.Contains(basis, "scaled") {
		t.Errorf("cpu 7b %v %q", tps, basis)
	}
	// Higher rank → more FLOPs → lower throughput; checkpointing → 0.75×.
	h := balanced(mistral)
	base, _ := PerGPUThroughput(gpu(t, "H100-80GB"), model(t, mistral), h, nil)
	h.LoraRank = 64
	hi, _ := PerGPUThroughput(gpu(t, "H100-80GB"), model(t, mistral), h, nil)
	h.LoraRank, h.GradientCheckpointing = 16, true
	ck, _ := PerGPUThroughput(gpu(t, "H100-80GB"), model(t, mistral), h, nil)
	if !(hi < base) || math.Abs(ck-0.75*base) > 1e-6 {
		t.Errorf("base %v r64 %v ckpt %v", base, hi, ck)
	}
}

func TestMicroBatchTokens(t *testing.T) {
	cases := []struct {
		batch, seq int
		mean, want float64
	}{
		{8, 2048, 0, 16384},    // unknown: full rows
		{8, 2048, 4000, 16384}, // longer than a row: full rows
		{1, 2048, 300, 450},    // 1.5 × 300
		{8, 2048, 400, 6144},   // 4800 → 3 rows
		{2, 1024, 1000, 2048},  // 3000 → capped at 2 full rows
	}
	for _, c := range cases {
		if got := MicroBatchTokens(c.batch, c.seq, c.mean); got != c.want {
			t.Errorf("MicroBatchTokens(%d, %d, %v) = %v, want %v", c.batch, c.seq, c.mean, got, c.want)
		}
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(Estimate(baseInput(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"estimated_cost"`, `"estimated_duration_hours"`, `"cost_breakdown":{"compute"`, `"storage"`, `"data_transfer"`,
		`"gpu_hours"`, `"cost_range":{"low"`, `"duration_hours_range"`, `"tokens_used"`, `"basis"`, `"memory":{"fits"`, `"max_batch_size"`, `"overheads_hours"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
}

// The time after training (evaluation and upload) is reported for the
// running job's ETA; with calibration it keeps its share of the measured
// overhead.
func TestAfterTrainingSeconds(t *testing.T) {
	in := baseInput(t)
	r := Estimate(in)
	want := (r.OverheadsHours["evaluation"] + r.OverheadsHours["upload"]) * 3600
	if math.Abs(r.AfterTrainingSeconds-want) > 1 || r.EvalTokenSeconds <= 0 || r.EvalTokenSeconds >= r.AfterTrainingSeconds {
		t.Fatalf("after training %v s (eval tokens %v s), want %v", r.AfterTrainingSeconds, r.EvalTokenSeconds, want)
	}
	in.Calibration = &Calibration{TokensPerSecond: r.PerGPUTokensPerSecond, Runs: 3, OverheadSeconds: 2 * (r.EstimatedDurationHours - r.TrainingHours) * 3600}
	c := Estimate(in)
	if math.Abs(c.AfterTrainingSeconds-2*r.AfterTrainingSeconds) > 1 {
		t.Fatalf("calibrated: %v, want twice %v", c.AfterTrainingSeconds, r.AfterTrainingSeconds)
	}
}
