package jobs

import (
	"github.com/brightrun/brightrun/internal/store"
)

// beforeEvaluation lists the stages whose ETA must still add the final
// evaluation, saving and upload.
var beforeEvaluation = map[string]bool{"downloading": true, "preparing": true, "loading_model": true, "training": true}

// ETA is the seconds left of the whole job when the trainer reports
// trainerETA seconds left of its training steps: it adds the stages after
// training from the job's estimate (after_training_seconds), rescaling the
// throughput-bound validation passes by the throughput measured so far.
// Once training is over the trainer reports no ETA (0) and the completion
// time set during training stands.
func ETA(j store.Job, stage string, trainerETA, measuredTPS float64) float64 {
	e := j.Estimate
	if trainerETA <= 0 || !beforeEvaluation[stage] || e == nil || e.AfterTrainingSeconds <= 0 {
		return trainerETA
	}
	after := e.AfterTrainingSeconds
	if measuredTPS > 0 && e.TokensPerSecond > 0 {
		after += e.EvalTokenSeconds * (e.TokensPerSecond/measuredTPS - 1)
	}
	return trainerETA + max(after, 0)
}
