// Package jobdoc defines, once, the JSON documents a training job and its
// model carry: the GPU configuration, the last checkpoint, the trainer's run
// summary and evaluation, and the model's quality metrics, configuration and
// artifact list. The agent protocol (internal/agentapi), the store (a JSON
// column each, encoded and decoded in internal/store/sqlstore/scan.go), the
// API and the pages all use these types; none handles these documents as
// map[string]any. The hyperparameters are catalog.Hyperparameters.
//
// Field names are the public JSON shape (docs/api.md, docs/agent-protocol.md,
// testdata/golden/agent-protocol.json): renaming one is a breaking change.
package jobdoc

import (
	"math"

	"github.com/brightrun/brightrun/internal/training/catalog"
)

// GPUConfig is a job's gpu_config: the spec's GPUConfig. Price and memory
// come from the catalog when the job is created.
type GPUConfig struct {
	GPUType        string   `json:"gpu_type"`
	NumGPUs        int      `json:"num_gpus"`
	GPUMemoryGB    *float64 `json:"gpu_memory_gb,omitempty"`
	CostPerGPUHour *float64 `json:"cost_per_gpu_hour,omitempty"`
}

// PricePerGPUHour is the configured price (0 when unset).
func (g GPUConfig) PricePerGPUHour() float64 {
	if g.CostPerGPUHour == nil {
		return 0
	}
	return *g.CostPerGPUHour
}

// File is one uploaded object: an adapter or checkpoint file.
type File struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	StoragePath string `json:"storage_path"`
}

// Checkpoint is what the job row keeps of the last uploaded checkpoint.
type Checkpoint struct {
	Step  int    `json:"step"`
	Files []File `json:"files"`
}

// LossPPL is one model's validation loss and perplexity.
type LossPPL struct {
	ValidationLoss *float64 `json:"validation_loss"`
	Perplexity     *float64 `json:"perplexity"`
	// MeanTokenAccuracy is the share of assistant tokens whose argmax
	// prediction is the label (older trainers: absent).
	MeanTokenAccuracy *float64 `json:"mean_token_accuracy,omitempty"`
}

// Message is one chat turn: of an evaluation sample's conversation, of a
// playground preference's conversation (store.Preference) and of an
// inference request (inference.Message is this type).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// EvalSample is one prompt the base model and the adapter both answered.
type EvalSample struct {
	Prompt    string `json:"prompt"`
	Reference string `json:"reference"`
	Base      string `json:"base"`
	Adapter   string `json:"adapter"`
	// Messages is the whole prompt conversation (older trainers: absent).
	Messages []Message `json:"messages,omitempty"`
}

// Samples-from values.
const (
	SamplesFromValidation = "validation"
	SamplesFromTrain      = "train"
)

// Eval is the trainer's evaluation report (eval.json as the agent sends it).
type Eval struct {
	Base    LossPPL `json:"base"`
	Adapter LossPPL `json:"adapter"`
	// SamplesFrom: "validation" (held-out prompts) or "train" (no
	// validation split was left).
	SamplesFrom *string      `json:"samples_from,omitempty"`
	Samples     []EvalSample `json:"samples"`
}

// Artifacts is a model's artifacts document: where its files are and the
// evaluation they came with.
type Artifacts struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	Files  []File `json:"files"`
	Eval   *Eval  `json:"eval,omitempty"`
}

// Quality is a model's quality_metrics, computed at completion from the
// evaluation and the loss curve. Absent values are omitted, except the
// final training loss (null when the trainer did not report it).
type Quality struct {
	BaseValidationLoss  *float64 `json:"base_validation_loss,omitempty"`
	FinalValidationLoss *float64 `json:"final_validation_loss,omitempty"`
	BasePerplexity      *float64 `json:"base_perplexity,omitempty"`
	AdapterPerplexity   *float64 `json:"adapter_perplexity,omitempty"`
	// PerplexityImprovementPct is the rating's basis and the models list's
	// quality sort key (store.ModelSortKey).
	PerplexityImprovementPct *float64 `json:"perplexity_improvement_pct,omitempty"`
	Samples                  *int     `json:"samples,omitempty"`
	FinalTrainingLoss        *float64 `json:"final_training_loss"`
	InitialTrainingLoss      *float64 `json:"initial_training_loss,omitempty"`
	LossReductionPct         *float64 `json:"loss_reduction_pct,omitempty"`
	// FinalValidationMeanTokenAccuracy is the adapter's mean token accuracy
	// on the validation split (OpenAI's full_valid_mean_token_accuracy).
	FinalValidationMeanTokenAccuracy *float64 `json:"final_validation_mean_token_accuracy,omitempty"`
}

// Configuration is a model's configuration: what it was trained with.
type Configuration struct {
	Hyperparameters catalog.Hyperparameters `json:"hyperparameters"`
	GPUConfig       GPUConfig               `json:"gpu_config"`
	BaseModel       string                  `json:"base_model"`
	PresetID        string                  `json:"preset_id"`
}

// Finite is v when it is a finite number, else nil (NaN and ±Inf cannot be
// stored as JSON).
func Finite(v *float64) *float64 {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return nil
	}
	return v
}

// Metrics is a job's current_metrics: the newest reported value of each
// training metric, for the job page's live numbers.
type Metrics struct {
	Step           int      `json:"step"`
	TrainingLoss   *float64 `json:"training_loss,omitempty"`
	ValidationLoss *float64 `json:"validation_loss,omitempty"`
	LearningRate   *float64 `json:"learning_rate,omitempty"`
	// Throughput is in tokens per second.
	Throughput     *float64 `json:"throughput,omitempty"`
	GPUUtilization *float64 `json:"gpu_utilization,omitempty"`
	GPUMemoryGB    *float64 `json:"gpu_memory_gb,omitempty"`
	MFU            *float64 `json:"mfu,omitempty"`
	GradientNorm   *float64 `json:"gradient_norm,omitempty"`
}

// Then is the current metrics after a batch whose newest point gave next:
// next's values, and for the losses, learning rate, throughput and GPU
// utilisation it lacks, the last known ones (a validation loss comes only
// every few steps; the page keeps showing the last one).
func (m Metrics) Then(next Metrics) Metrics {
	keep := func(v, old *float64) *float64 {
		if v == nil {
			return old
		}
		return v
	}
	next.TrainingLoss = keep(next.TrainingLoss, m.TrainingLoss)
	next.ValidationLoss = keep(next.ValidationLoss, m.ValidationLoss)
	next.LearningRate = keep(next.LearningRate, m.LearningRate)
	next.Throughput = keep(next.Throughput, m.Throughput)
	next.GPUUtilization = keep(next.GPUUtilization, m.GPUUtilization)
	return next
}

// Capabilities are what an agent declares it runs, sent with every claim
// and kept on the agent's row (nil there until its first claim).
type Capabilities struct {
	GPUType     string  `json:"gpu_type"`
	GPUCount    *int    `json:"gpu_count"` // absent: 1; 0 or less is refused
	GPUMemoryGB float64 `json:"gpu_memory_gb"`
	// Distributed: the agent runs an N-GPU job as N processes. Agents
	// without it (older trainers) are only given 1-GPU jobs, which they
	// would otherwise train on one GPU and be billed for N.
	Distributed bool `json:"distributed"`
}
