package jobs

import (
	"math"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/store"
)

// Rate is the job's price per wall-clock hour: the GPU's price × the GPUs
// it holds.
func Rate(j store.Job) float64 {
	return RateFor(j, 0)
}

// RateFor is the price per hour of the job run on used GPUs: the world size
// the agent reported it trained with (docs/trainer.md, "Distributed"), or,
// when 0, the job's num_gpus. An agent never runs more processes than the
// job asked for, so more than num_gpus bills num_gpus.
func RateFor(j store.Job, used int) float64 {
	g := j.GPUConfig
	return g.PricePerGPUHour() * float64(GPUsBilled(g.NumGPUs, used))
}

// GPUsBilled is the GPU count time is billed for: used when the agent
// reported it (1 ≤ used ≤ asked), else what the job asked for.
func GPUsBilled(asked, used int) int {
	asked = max(asked, 1)
	if used >= 1 && used < asked {
		return used
	}
	return asked
}

// Elapsed is the billable run time: finished attempts plus the current one
// up to now. Time spent queued (waiting for an agent) is never billed.
func Elapsed(e store.ExecJob, now time.Time) float64 {
	secs := e.RunSeconds
	if e.AttemptStartedAt != nil && now.After(*e.AttemptStartedAt) {
		secs += now.Sub(*e.AttemptStartedAt).Seconds()
	}
	return secs
}

// Cost is what seconds of run time at rate per hour cost, in cents.
func Cost(seconds, ratePerHour float64) float64 {
	return math.Round(seconds/3600*ratePerHour*100) / 100
}

// computeRecord is the job's one compute cost record, written when it ends.
func computeRecord(e store.ExecJob, status string, secs, cost float64, used int, now time.Time) store.CostRecordCreateParams {
	d := costdoc.Details{Compute: &costdoc.Compute{GPUType: e.GPUType, NumGPUs: GPUsBilled(e.NumGPUs, used), Seconds: math.Round(secs*10) / 10,
		Attempts: e.Attempt, RatePerHour: RateFor(e.Job, used), Status: status}}
	return store.CostRecordCreateParams{UserID: e.UserID, JobID: e.ID, Type: costdoc.TypeCompute, Amount: cost, Details: d,
		BillingPeriod: now.UTC().Format("2006-01-02"), At: now}
}
