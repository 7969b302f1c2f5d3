package jobdoc

// Summary is the trainer's run summary (summary.json, sent with the
// complete call) as the model's training_summary keeps it, plus the
// server's attempts and retries. Every field is optional: a value the
// trainer did not send is omitted, never invented. The trainer writes it in
// trainer/brightrun_trainer/train.py; a key added there must be added here
// (the agent-protocol decoding drops unknown keys): the golden example
// (testdata/golden/agent-protocol.json, "complete") lists every key, the Go
// golden test decodes it strictly into this type, and the trainer's tests
// refuse a summary key the example lacks.
type Summary struct {
	Status                 string   `json:"status,omitempty"`
	TotalSteps             *int     `json:"total_steps,omitempty"`
	StepsCompleted         *int     `json:"steps_completed,omitempty"`
	EpochsCompleted        *float64 `json:"epochs_completed,omitempty"`
	TrainExamples          *int     `json:"train_examples,omitempty"`
	ValidationExamples     *int     `json:"validation_examples,omitempty"`
	TokensTrained          *int64   `json:"tokens_trained,omitempty"`
	AssistantTokensTrained *int64   `json:"assistant_tokens_trained,omitempty"`
	TrainSeconds           *float64 `json:"train_seconds,omitempty"`
	TokensPerSecond        *float64 `json:"tokens_per_second,omitempty"`
	FinalTrainingLoss      *float64 `json:"final_training_loss,omitempty"`
	FinalValidationLoss    *float64 `json:"final_validation_loss,omitempty"`
	BaseValidationLoss     *float64 `json:"base_validation_loss,omitempty"`
	// FinalValidationMeanTokenAccuracy: the adapter's share of validation
	// assistant tokens predicted exactly (argmax).
	FinalValidationMeanTokenAccuracy *float64    `json:"final_validation_mean_token_accuracy,omitempty"`
	TrainTokensPerEpoch              *int64      `json:"train_tokens_per_epoch,omitempty"`
	Truncation                       *Truncation `json:"truncation,omitempty"`
	Device                           string      `json:"device,omitempty"`
	DType                            string      `json:"dtype,omitempty"`
	ModelFlopsPerTokenDense          *float64    `json:"model_flops_per_token_dense,omitempty"`
	PeakFlopsName                    string      `json:"peak_flops_name,omitempty"`
	LastCheckpoint                   *string     `json:"last_checkpoint,omitempty"`
	WorldSize                        *float64    `json:"world_size,omitempty"`
	GPUMemoryPeakGB                  *float64    `json:"gpu_memory_peak_gb,omitempty"`
	WallSeconds                      *float64    `json:"wall_seconds,omitempty"`
	Attempts                         *int        `json:"attempts,omitempty"`
	Retries                          *int        `json:"retries,omitempty"`
}

// Truncation is what max_seq_length did to each split.
type Truncation struct {
	Train      *EncodeStats `json:"train,omitempty"`
	Validation *EncodeStats `json:"validation,omitempty"`
}

// EncodeStats are one split's encoding counts (trainer encoding.EncodeStats).
type EncodeStats struct {
	Examples                        int64       `json:"examples"`
	KeptExamples                    int64       `json:"kept_examples"`
	DroppedExamples                 int64       `json:"dropped_examples"`
	TruncatedExamples               int64       `json:"truncated_examples"`
	DroppedHistoryMessages          int64       `json:"dropped_history_messages"`
	Tokens                          int64       `json:"tokens"`
	AssistantTokens                 int64       `json:"assistant_tokens"`
	TokensBeforeTruncation          int64       `json:"tokens_before_truncation"`
	AssistantTokensBeforeTruncation int64       `json:"assistant_tokens_before_truncation"`
	TokensCut                       int64       `json:"tokens_cut"`
	AssistantTokensCut              int64       `json:"assistant_tokens_cut"`
	TokensPerExampleStats           LengthStats `json:"tokens_per_example_stats"`
}

// LengthStats summarise the tokens per example.
type LengthStats struct {
	Min  int64   `json:"min"`
	P50  int64   `json:"p50"`
	P95  int64   `json:"p95"`
	Max  int64   `json:"max"`
	Mean float64 `json:"mean"`
}

// WorldSizeOrZero is the number of training processes the summary reports (0
// when absent or not a whole number from 1 to 1024).
func (s Summary) WorldSizeOrZero() int {
	v := Finite(s.WorldSize)
	if v == nil || *v < 1 || *v != float64(int(*v)) || *v > 1024 {
		return 0
	}
	return int(*v)
}
