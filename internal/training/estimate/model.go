package estimate

import (
	"math"

	"github.com/brightrun/brightrun/internal/training/catalog"
)

// Model arithmetic: parameter counts, FLOPs and memory. Every constant is
// explained in docs/estimates.md.

const (
	// DefaultMFU is the model-FLOPs utilisation assumed for the default GPU
	// throughput of ≥1B models: measured 0.205–0.215 on an H100 80GB SXM for a
	// Mistral-7B-shaped model, LoRA r16 on all linear layers, dropout 0.1,
	// SDPA, no torch.compile, packed 2048-token rows (the trainer's default
	// path; bench/trainer/gpu_bench.py "baseline").
	DefaultMFU = 0.21
	// RefAttentionTokens is the mean example length used for the attention
	// term of the default throughput (the benchmark's examples are uniform in
	// 128–1536 tokens: mean 832).
	RefAttentionTokens = 832
	// RefLoraRank is the rank the default throughputs assume.
	RefLoraRank = 16

	// Activation bytes per token, fitted to measured peaks (see docs):
	// per layer actLayerFactor·(actH·hidden + actI·intermediate), plus, when
	// lora_dropout > 0, actLayerFactor·(actDropH·hidden + actDropI·intermediate),
	// plus actVocab·vocab for the logits and the loss.
	actLayerFactor = 1.12
	actH           = 19.0
	actI           = 8.0
	actDropH       = 18.0
	actDropI       = 3.0
	actVocab       = 17.0
	// cpuActivationFactor: fp32 activations on the CPU, measured 2.2× the bf16
	// figure (4.67 MB/token for SmolLM2-135M, RSS slope). The trainer's CPU
	// path (single rows, bf16 autocast where the CPU has bf16 units) keeps
	// ~1.65× on fp32 weights and ~1.2× with bf16 frozen weights (its default
	// there; bench/trainer/cpu_fast.py peak RSS, 3.64 GiB for SmolLM2 at 966
	// tokens). A CPU option with cpu_bf16_weights in the catalog is sized
	// with cpuBF16WeightsFactor and 2-byte weights (the trainer's path there);
	// other CPU options with fp32, the largest. The same numbers are in
	// trainer/brightrun_trainer/memory.py (CPU_FP32_FACTOR,
	// CPU_BF16_WEIGHTS_FACTOR), which the agent checks before loading the
	// weights; TestCPUMemoryModelAgreesWithTheTrainer holds them equal.
	cpuActivationFactor  = 2.2
	cpuBF16WeightsFactor = 1.2

	// CUDAContextGB is the CUDA context and library workspaces outside the
	// PyTorch allocator; FragmentationShare is added on top of tensor memory
	// for the caching allocator's fragmentation.
	CUDAContextGB      = 1.0
	CPURuntimeGB       = 1.0 // Python, torch and tokenizer on the CPU
	FragmentationShare = 0.05

	// MicroBatchPeakFactor: the largest micro-batch of an epoch holds more
	// tokens than the average one; memory is sized for 1.5× the mean.
	MicroBatchPeakFactor = 1.5

	// CheckpointingSpeed: throughput with gradient checkpointing relative to
	// without (measured 0.74 on the H100 run above).
	CheckpointingSpeed = 0.75

	gib = float64(1 << 30)
)

// LoraParams is the number of LoRA weights for rank r on q, k, v, o, gate, up
// and down of every layer: r·(in+out) per adapted linear.
func LoraParams(a catalog.Arch, rank int) int64 {
	h, kv, i := int64(a.Hidden), int64(a.KVDim()), int64(a.Intermediate)
	perLayer := (h + h) + // q
		2*(h+kv) + // k, v
		(h + h) + // o
		2*(h+i) + // gate, up
		(i + h) // down
	return int64(rank) * perLayer * int64(a.Layers)
}

// FrozenLinearParams is N: the frozen linear weights a token passes through
// (the layers' projections plus the output head; embeddings are lookups).
func FrozenLinearParams(a catalog.Arch) int64 {
	h, kv, i := int64(a.Hidden), int64(a.KVDim()), int64(a.Intermediate)
	perLayer := h*h + 2*h*kv + h*h + 3*h*i
	return perLayer*int64(a.Layers) + int64(a.Vocab)*h
}

// TrainFLOPsPerToken is 4N + 6P + attention, as the trainer's MFU: forward 2N,
// input-gradient 2N (frozen weights get no weight gradient), 6P for the LoRA
// weights, and 6·layers·hidden·L for causal attention over examples of mean
// length L.
func TrainFLOPsPerToken(a catalog.Arch, rank int, meanTokens float64) float64 {
	n := float64(FrozenLinearParams(a))
	p := float64(LoraParams(a, rank))
	return 4*n + 6*p + 6*float64(a.Layers)*float64(a.Hidden)*meanTokens
}

// DerivedThroughput is the FLOPs-based prior for a GPU:
// DefaultMFU × peak ÷ TrainFLOPsPerToken at rank 16 and the reference length.
// It is 0 for the CPU or an unknown peak.
func DerivedThroughput(g catalog.GPU, a catalog.Arch) float64 {
	if g.CPU || g.BF16PeakTFLOPS <= 0 {
		return 0
	}
	return DefaultMFU * g.BF16PeakTFLOPS * 1e12 / TrainFLOPsPerToken(a, RefLoraRank, RefAttentionTokens)
}

// ActivationBytesPerToken is the activation memory one token of a micro-batch
// keeps for the backward pass (bf16 on a GPU, fp32 on the CPU) without
// gradient checkpointing.
func ActivationBytesPerToken(a catalog.Arch, dropout float64, cpu bool) float64 {
	h, i := float64(a.Hidden), float64(a.Intermediate)
	layer := actH*h + actI*i
	if dropout > 0 {
		layer += actDropH*h + actDropI*i
	}
	b := actLayerFactor*layer*float64(a.Layers) + actVocab*float64(a.Vocab)
	if cpu {
		b *= cpuActivationFactor
	}
	return b
}

// activationBytes is ActivationBytesPerToken (or, with checkpointing,
// checkpointedBytesPerToken) for the device g: bf16 on a GPU; on the CPU fp32,
// or bf16 frozen weights under autocast where the catalog says the CPU has
// bf16 units.
func activationBytes(a catalog.Arch, dropout float64, g catalog.GPU, ckpt bool) float64 {
	per := ActivationBytesPerToken(a, dropout, false)
	if ckpt {
		per = checkpointedBytesPerToken(a, dropout, false)
	}
	switch {
	case g.CPU && g.CPUBF16Weights:
		return per * cpuBF16WeightsFactor
	case g.CPU:
		return per * cpuActivationFactor
	}
	return per
}

// checkpointedBytesPerToken: with gradient checkpointing only every layer's
// input (2 bytes × hidden) is kept, plus, at the peak, the larger of one
// layer's recomputed activations and the logits.
func checkpointedBytesPerToken(a catalog.Arch, dropout float64, cpu bool) float64 {
	h, i := float64(a.Hidden), float64(a.Intermediate)
	layer := actH*h + actI*i
	if dropout > 0 {
		layer += actDropH*h + actDropI*i
	}
	b := 2*h*float64(a.Layers) + math.Max(actLayerFactor*layer, actVocab*float64(a.Vocab))
	if cpu {
		b *= cpuActivationFactor
	}
	return b
}

// CPUForwardTokens is the token count the CPU's memory is sized for: the
// trainer runs one example per forward there (single rows: no padding, no
// block-diagonal mask, SDPA's fused causal kernel) and accumulates the
// micro-batch's gradients, so activations are those of the longest example,
// at most max_seq_length, whatever the batch size.
func CPUForwardTokens(maxSeq int) float64 { return float64(maxSeq) }

// MicroBatchTokens is the token count memory is sized for: batch examples of
// the mean length (capped at maxSeq) times MicroBatchPeakFactor, rounded up to
// whole packed rows of maxSeq when it exceeds one row, and never more than
// batch full rows. meanTokens ≤ 0 (unknown) means full rows.
func MicroBatchTokens(batch, maxSeq int, meanTokens float64) float64 {
	if batch < 1 {
		batch = 1
	}
	full := float64(batch) * float64(maxSeq)
	if meanTokens <= 0 || meanTokens >= float64(maxSeq) {
		return full
	}
	t := float64(batch) * meanTokens * MicroBatchPeakFactor
	if t > float64(maxSeq) {
		t = math.Ceil(t/float64(maxSeq)) * float64(maxSeq)
	}
	return math.Min(t, full)
}
