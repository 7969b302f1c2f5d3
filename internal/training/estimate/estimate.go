// Package estimate computes a training job's cost, duration and memory fit
// from the catalog. Pure functions; the formulas and constants are documented
// in docs/estimates.md.
package estimate

import (
	"fmt"
	"math"

	"github.com/brightrun/brightrun/internal/training/catalog"
)

// Overhead and pricing constants (docs/estimates.md explains each).
const (
	DownloadGBPerSecond      = 0.1  // model download from the Hugging Face Hub: 100 MB/s
	LoadGBPerSecond          = 1.0  // weights from local disk into device memory
	StartupSecondsGPU        = 30.0 // Python imports, CUDA init, tokenizer, dataset encoding
	StartupSecondsCPU        = 15.0
	EvalSpeedup              = 2.0 // forward-only evaluation (2N) vs training (4N+6P) per token
	DefaultEvalPasses        = 2   // final validation loss on the base model and on the adapter
	SampleGenerations        = 6   // eval_samples 3 × (base, adapter)
	SampleNewTokens          = 128 // eval_max_new_tokens
	GenTokensPerSecondGPU    = 25.0
	GenTokensPerSecondCPU    = 20.0
	AdapterBytesPerParam     = 4.0  // PEFT saves adapters in fp32 (autocast_adapter_dtype)
	UploadGBPerSecond        = 0.05 // adapter upload to the object store: 50 MB/s
	UploadFixedSeconds       = 5.0
	DefaultStorageGBMonth    = 0.023 // AWS S3 Standard, us-east-1, first 50 TB, 2025
	DefaultEgressPerGB       = 0.09  // AWS data transfer out to the internet, first 10 TB, 2025
	WeightBytesGPU           = 2.0   // bf16
	WeightBytesCPU           = 4.0   // fp32 on the CPU
	WeightBytesCPUBF16       = 2.0   // bf16 frozen weights on a CPU with bf16 units (cpu_bf16_weights)
	MasterBytesPerLoraParam  = 4.0   // fp32 LoRA weights
	GradBytesPerLoraParam    = 4.0   // fp32 LoRA gradients
	OptimizerBytesPerLoraPar = 8.0   // AdamW: two fp32 moments
	CalibratedRunsForTight   = 3
)

// Range factors applied to the point estimate of the duration (and the
// compute cost): default priors, 1–2 calibration runs, ≥3 calibration runs.
var (
	DefaultRange    = Range{Low: 0.80, High: 1.35}
	FewRunsRange    = Range{Low: 0.85, High: 1.20}
	CalibratedRange = Range{Low: 0.90, High: 1.10}
)

// Input describes the job to estimate.
type Input struct {
	TrainTokens int64 // tokens of the training split for ONE epoch (after truncation)
	EvalTokens  int64 // validation split tokens (evaluated per eval pass, base + adapter)
	Examples    int   // training examples (for step counts and the micro-batch size)
	Hyper       catalog.Hyperparameters
	Model       catalog.BaseModel
	GPU         catalog.GPU
	NumGPUs     int
	Calibration *Calibration // measured throughput for (GPU, model) from past runs, nil if none
	// StorageGBMonthPrice: object-store price; 0 means DefaultStorageGBMonth.
	StorageGBMonthPrice float64
	// EgressPerGB: price of downloading the adapter once; 0 means
	// DefaultEgressPerGB for GPUs (always 0 for the local CPU). Negative: free.
	EgressPerGB float64
	// EvalPasses: validation passes over EvalTokens; 0 means DefaultEvalPasses.
	EvalPasses int
	// ModelCached: the weights are already on the machine (no download).
	ModelCached bool
}

// Calibration is the measured training throughput per GPU for a (GPU, model).
type Calibration struct {
	TokensPerSecond float64 `json:"tokens_per_second"`
	Runs            int     `json:"runs"`
	// OverheadSeconds is the measured mean wall time of past runs outside
	// the training loop (model load, evaluation, upload); 0 = unknown.
	OverheadSeconds float64 `json:"overhead_seconds,omitempty"`
}

// Range is a low–high interval.
type Range struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// CostBreakdown splits the estimated cost (USD).
type CostBreakdown struct {
	Compute      float64 `json:"compute"`
	Storage      float64 `json:"storage"`
	DataTransfer float64 `json:"data_transfer"`
}

// MemoryFit is the per-device memory verdict (GiB).
type MemoryFit struct {
	Fits          bool    `json:"fits"`
	RequiredGB    float64 `json:"required_gb"`
	AvailableGB   float64 `json:"available_gb"`
	WeightsGB     float64 `json:"weights_gb"`
	LoRAGB        float64 `json:"lora_gb"` // LoRA weights (fp32) + their gradients
	OptimizerGB   float64 `json:"optimizer_gb"`
	ActivationsGB float64 `json:"activations_gb"`
	OverheadGB    float64 `json:"overhead_gb"`
	// MicroBatchTokens: tokens per micro-batch the activations are sized for.
	MicroBatchTokens float64 `json:"micro_batch_tokens"`
	// MaxBatchSize: the largest batch_size that fits with these settings
	// (0: not even 1).
	MaxBatchSize int `json:"max_batch_size"`
	// FitsWithCheckpointing: whether the requested batch fits with gradient
	// checkpointing (only meaningful when it is off and Fits is false).
	FitsWithCheckpointing bool   `json:"fits_with_checkpointing"`
	Warning               string `json:"warning,omitempty"`
}

// Result is the estimate.
type Result struct {
	EstimatedCost          float64            `json:"estimated_cost"`
	EstimatedDurationHours float64            `json:"estimated_duration_hours"`
	CostBreakdown          CostBreakdown      `json:"cost_breakdown"`
	GPUHours               float64            `json:"gpu_hours"` // wall hours × GPUs (what is billed)
	CostRange              Range              `json:"cost_range"`
	DurationRange          Range              `json:"duration_hours_range"`
	TokensUsed             int64              `json:"tokens_used"` // train tokens × epochs
	TotalSteps             int                `json:"total_steps"`
	TokensPerSecond        float64            `json:"tokens_per_second"` // aggregate training throughput assumed
	PerGPUTokensPerSecond  float64            `json:"per_gpu_tokens_per_second"`
	ScalingEfficiency      float64            `json:"scaling_efficiency"`
	TrainingHours          float64            `json:"training_hours"`
	Basis                  string             `json:"basis"`
	Calibrated             bool               `json:"calibrated"`
	CalibrationRuns        int                `json:"calibration_runs"`
	Memory                 MemoryFit          `json:"memory"`
	OverheadsHours         map[string]float64 `json:"overheads_hours"` // download, load, evaluation, upload
	AdapterGB              float64            `json:"adapter_gb"`
	// AfterTrainingSeconds is the time after the last training step:
	// final evaluation (validation passes and sample generations), saving
	// and upload. EvalTokenSeconds is its part that scales with the
	// training throughput (the validation passes). A running job's ETA adds
	// them to the trainer's time for the remaining steps.
	AfterTrainingSeconds float64 `json:"after_training_seconds"`
	EvalTokenSeconds     float64 `json:"eval_token_seconds"`
	NumGPUs              int     `json:"num_gpus"`
}

// scalingTable: data-parallel efficiency per GPU count (interpolated between).
var scalingTable = []struct {
	n   int
	eff float64
}{{1, 1.0}, {2, 0.92}, {4, 0.88}, {8, 0.85}}

// ScalingEfficiency is the data-parallel efficiency for n GPUs: 1.0, 0.92,
// 0.88, 0.85 at 1, 2, 4, 8, linear in between (n·eff(n) strictly increases).
func ScalingEfficiency(n int) float64 {
	if n <= 1 {
		return 1
	}
	for k := 1; k < len(scalingTable); k++ {
		a, b := scalingTable[k-1], scalingTable[k]
		if n <= b.n {
			return a.eff + (b.eff-a.eff)*float64(n-a.n)/float64(b.n-a.n)
		}
	}
	return scalingTable[len(scalingTable)-1].eff
}

// PerGPUThroughput is the training tokens/s of one device and where it came
// from: the calibration, the GPU's table for the model's size class, or the
// FLOPs-based derivation; a rank other than 16 and gradient checkpointing
// scale the default figures.
func PerGPUThroughput(g catalog.GPU, m catalog.BaseModel, h catalog.Hyperparameters, cal *Calibration) (float64, string) {
	if cal != nil && cal.Runs > 0 && cal.TokensPerSecond > 0 && !math.IsInf(cal.TokensPerSecond, 0) {
		runs := "runs"
		if cal.Runs == 1 {
			runs = "run"
		}
		return cal.TokensPerSecond, fmt.Sprintf("based on %d past %s on %s with %s", cal.Runs, runs, g.DisplayName, m.ID)
	}
	var tps float64
	var basis string
	if v, ok := g.Throughput[m.SizeClass]; ok && v > 0 {
		tps = v
		basis = fmt.Sprintf("default throughput for %s with a %s model (catalog)", g.DisplayName, m.SizeClass)
	} else if d := DerivedThroughput(g, m.Arch); d > 0 {
		tps = d
		basis = fmt.Sprintf("throughput derived from %s's peak of %g TFLOP/s at %.0f%% MFU", g.DisplayName, g.BF16PeakTFLOPS, DefaultMFU*100)
	} else {
		tps = scaledFromNearest(g, m)
		basis = fmt.Sprintf("throughput scaled by FLOPs from %s's other figures (rough)", g.DisplayName)
	}
	rank := h.LoraRank
	if rank <= 0 {
		rank = RefLoraRank
	}
	if rank != RefLoraRank {
		tps *= TrainFLOPsPerToken(m.Arch, RefLoraRank, RefAttentionTokens) / TrainFLOPsPerToken(m.Arch, rank, RefAttentionTokens)
	}
	if h.GradientCheckpointing {
		tps *= CheckpointingSpeed
		basis += ", gradient checkpointing"
	}
	return tps, basis
}

// scaledFromNearest: with no figure for this size class and no peak (the
// CPU), scale the GPU's first available figure by the FLOPs ratio of a
// reference architecture for that class (parameters only).
func scaledFromNearest(g catalog.GPU, m catalog.BaseModel) float64 {
	ref := map[string]float64{"0.1b": 1.345e8, "1b": 1.2e9, "3b": 3.2e9, "7b": 7.24e9, "8b": 8.03e9, "13b": 13e9, "70b": 70e9}
	best, bestRatio := 0.0, math.Inf(1)
	for class, v := range g.Throughput {
		p, ok := ref[class]
		if !ok || v <= 0 {
			continue
		}
		ratio := math.Abs(math.Log(p / float64(m.Parameters)))
		if ratio < bestRatio {
			best, bestRatio = v*p/float64(m.Parameters), ratio
		}
	}
	if best > 0 {
		return best
	}
	return 100 // nothing to go on: a deliberately pessimistic floor
}

// Estimate computes the cost, duration and memory verdict of a job.
func Estimate(in Input) Result {
	h := in.Hyper
	n := in.NumGPUs
	if n < 1 || in.GPU.CPU {
		n = 1
	}
	epochs := max(h.NumEpochs, 1)
	batch := max(h.BatchSize, 1)
	accum := max(h.GradientAccumulationSteps, 1)
	r := Result{NumGPUs: n, OverheadsHours: map[string]float64{}}

	r.TokensUsed = in.TrainTokens * int64(epochs)
	if in.Examples > 0 {
		// The same global batch (batch × accum examples) and so the same
		// optimizer steps on any GPU count: n GPUs split each step's examples.
		micro := (in.Examples + batch - 1) / batch
		r.TotalSteps = (micro + accum - 1) / accum * epochs
	}

	perGPU, basis := PerGPUThroughput(in.GPU, in.Model, h, in.Calibration)
	eff := ScalingEfficiency(n)
	agg := perGPU * float64(n) * eff
	r.PerGPUTokensPerSecond = round(perGPU, 1)
	r.ScalingEfficiency = eff
	r.TokensPerSecond = round(agg, 1)
	r.Basis = basis
	if in.Calibration != nil && in.Calibration.Runs > 0 && in.Calibration.TokensPerSecond > 0 {
		r.Calibrated, r.CalibrationRuns = true, in.Calibration.Runs
	}

	trainSec := float64(r.TokensUsed) / agg

	// Overheads.
	weightsGB := float64(in.Model.Parameters) * WeightBytesGPU / 1e9 // download size: bf16 safetensors
	download := 0.0
	if !in.ModelCached {
		download = weightsGB / DownloadGBPerSecond
	}
	startup := StartupSecondsGPU
	if in.GPU.CPU {
		startup = StartupSecondsCPU
	}
	load := startup + weightsGB/LoadGBPerSecond
	passes := in.EvalPasses
	if passes <= 0 {
		passes = DefaultEvalPasses
	}
	gen := GenTokensPerSecondGPU
	if in.GPU.CPU {
		gen = GenTokensPerSecondCPU
	}
	// Evaluation runs on one device (rank 0; the periodic evaluation runs
	// on every rank at once, which takes the same time).
	evalTokens := float64(in.EvalTokens) * float64(passes) / (perGPU * EvalSpeedup)
	eval := evalTokens + SampleGenerations*SampleNewTokens/gen
	lora := LoraParams(in.Model.Arch, max(h.LoraRank, 1))
	adapterGB := float64(lora) * AdapterBytesPerParam / 1e9
	upload := UploadFixedSeconds + adapterGB/UploadGBPerSecond
	r.AdapterGB = round(adapterGB, 4)
	r.OverheadsHours["model_download"] = round(download/3600, 4)
	r.OverheadsHours["model_load"] = round(load/3600, 4)
	r.OverheadsHours["evaluation"] = round(eval/3600, 4)
	r.OverheadsHours["upload"] = round(upload/3600, 4)

	r.TrainingHours = round(trainSec/3600, 4)
	overheads := download + load + eval + upload
	r.AfterTrainingSeconds, r.EvalTokenSeconds = round(eval+upload, 1), round(evalTokens, 1)
	if r.Calibrated && in.Calibration.OverheadSeconds > 0 {
		// Past runs of this model on this GPU measured the fixed part too;
		// the part after training keeps its modelled share of it.
		scale := in.Calibration.OverheadSeconds / overheads
		r.AfterTrainingSeconds, r.EvalTokenSeconds = round((eval+upload)*scale, 1), round(evalTokens*scale, 1)
		overheads = in.Calibration.OverheadSeconds
		r.OverheadsHours = map[string]float64{"measured": round(overheads/3600, 4)}
	}
	hours := (trainSec + overheads) / 3600
	r.EstimatedDurationHours = round(hours, 4)
	r.GPUHours = round(hours*float64(n), 4)

	// Costs.
	compute := hours * in.GPU.CostPerGPUHour * float64(n)
	storePrice := in.StorageGBMonthPrice
	if storePrice <= 0 {
		storePrice = DefaultStorageGBMonth
	}
	storage := adapterGB * storePrice
	egress := in.EgressPerGB
	if egress == 0 {
		egress = DefaultEgressPerGB
	}
	if egress < 0 || in.GPU.CPU {
		egress = 0
	}
	transfer := adapterGB * egress
	r.CostBreakdown = CostBreakdown{Compute: round(compute, 4), Storage: round(storage, 4), DataTransfer: round(transfer, 4)}
	r.EstimatedCost = round(compute+storage+transfer, 4)

	// Range.
	f := DefaultRange
	if r.Calibrated {
		f = FewRunsRange
		if r.CalibrationRuns >= CalibratedRunsForTight {
			f = CalibratedRange
		}
	}
	r.DurationRange = Range{Low: round(hours*f.Low, 4), High: round(hours*f.High, 4)}
	r.CostRange = Range{Low: round(compute*f.Low+storage+transfer, 4), High: round(compute*f.High+storage+transfer, 4)}

	mean := 0.0
	if in.Examples > 0 && in.TrainTokens > 0 {
		mean = float64(in.TrainTokens) / float64(in.Examples)
	}
	r.Memory = Memory(in.Model, in.GPU, h, mean)
	return r
}

// Memory is the per-device memory verdict for the settings; meanTokens is the
// mean training example length in tokens (≤ 0: unknown, sized for full rows).
// With data parallelism every GPU holds the whole model, so the verdict is
// the same for any GPU count.
func Memory(m catalog.BaseModel, g catalog.GPU, h catalog.Hyperparameters, meanTokens float64) MemoryFit {
	seq := h.MaxSeqLength
	if seq <= 0 {
		seq = catalog.DefaultMaxSeqLength
	}
	batch := max(h.BatchSize, 1)
	fit := memoryFor(m, g, h, seq, batch, meanTokens, h.GradientCheckpointing)
	fit.MaxBatchSize = 0
	for b := 1; b <= catalog.MaxBatchSize; b++ {
		if memoryFor(m, g, h, seq, b, meanTokens, h.GradientCheckpointing).Fits {
			fit.MaxBatchSize = b
		} else {
			break
		}
	}
	if fit.Fits {
		return fit
	}
	if !h.GradientCheckpointing {
		fit.FitsWithCheckpointing = memoryFor(m, g, h, seq, batch, meanTokens, true).Fits
	}
	dev := "GPU"
	if g.CPU {
		dev = "memory budget"
	}
	msg := fmt.Sprintf("Does not fit: about %.1f GB needed per device (weights %.1f, activations %.1f for %.0f tokens per micro-batch) but %s has %.0f GB.",
		fit.RequiredGB, fit.WeightsGB, fit.ActivationsGB, fit.MicroBatchTokens, g.DisplayName, fit.AvailableGB)
	switch {
	case fit.MaxBatchSize > 0:
		msg += fmt.Sprintf(" The largest batch size that fits is %d (raise gradient accumulation steps, under Advanced, to keep the effective batch).", fit.MaxBatchSize)
	case g.CPU:
		msg += " On the CPU one example is in memory at a time, so the batch size does not change this: use a shorter max sequence length, a larger memory budget, or gradient checkpointing (under Advanced)."
	default:
		msg += " Even batch_size 1 does not fit: choose a " + dev + " with more memory, a shorter max_seq_length, or gradient checkpointing."
	}
	if fit.FitsWithCheckpointing {
		msg += " It would fit with gradient checkpointing (under Advanced; about 25% slower)."
	}
	fit.Warning = msg
	return fit
}

func memoryFor(m catalog.BaseModel, g catalog.GPU, h catalog.Hyperparameters, seq, batch int, meanTokens float64, ckpt bool) MemoryFit {
	wb, overhead := WeightBytesGPU, CUDAContextGB
	if g.CPU {
		wb, overhead = WeightBytesCPU, CPURuntimeGB
		if g.CPUBF16Weights {
			wb = WeightBytesCPUBF16
		}
	}
	lora := float64(LoraParams(m.Arch, max(h.LoraRank, 1)))
	tokens := MicroBatchTokens(batch, seq, meanTokens)
	if g.CPU {
		tokens = CPUForwardTokens(seq)
	}
	per := activationBytes(m.Arch, h.LoraDropout, g, ckpt)
	f := MemoryFit{
		AvailableGB:      g.MemoryGB,
		WeightsGB:        float64(m.Parameters) * wb / gib,
		LoRAGB:           lora * (MasterBytesPerLoraParam + GradBytesPerLoraParam) / gib,
		OptimizerGB:      lora * OptimizerBytesPerLoraPar / gib,
		ActivationsGB:    tokens * per / gib,
		MicroBatchTokens: tokens,
	}
	tensors := f.WeightsGB + f.LoRAGB + f.OptimizerGB + f.ActivationsGB
	f.OverheadGB = overhead + FragmentationShare*tensors
	f.RequiredGB = tensors + f.OverheadGB
	f.Fits = f.RequiredGB <= f.AvailableGB
	f.WeightsGB, f.LoRAGB, f.OptimizerGB = round(f.WeightsGB, 3), round(f.LoRAGB, 3), round(f.OptimizerGB, 3)
	f.ActivationsGB, f.OverheadGB, f.RequiredGB = round(f.ActivationsGB, 3), round(f.OverheadGB, 3), round(f.RequiredGB, 3)
	return f
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
