package jobdoc

import "github.com/brightrun/brightrun/internal/training/catalog"

// FineTunePlan is a validated /v1 fine-tuning request: what its training job
// is created with. It is stored with the fine-tuning job
// (openai_fine_tuning_jobs.request), so the job is created the same way when
// its file becomes ready later (internal/openai calls it Plan).
type FineTunePlan struct {
	PresetID string                  `json:"preset_id"`
	GPUType  string                  `json:"gpu_type"`
	Hyper    catalog.Hyperparameters `json:"hyperparameters"`
	// What /v1 reports: the resolved values of "auto".
	NEpochs                int     `json:"n_epochs"`
	BatchSize              int     `json:"batch_size"`
	LearningRateMultiplier float64 `json:"learning_rate_multiplier"`
	// HyperFromMethod: the request used method.supervised (else the legacy field).
	HyperFromMethod bool `json:"hyper_from_method"`
	// BatchAuto: batch_size was "auto", so pickGPU may lower it to fit.
	BatchAuto bool `json:"batch_auto"`
}
