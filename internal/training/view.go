package training

import (
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

// JobView decodes a job's JSON columns for its page.
type JobView struct {
	J        store.Job
	Hyper    catalog.Hyperparameters
	GPU      GPUConfig
	Estimate *estimate.Result
	Active   bool
	Queue    *QueueInfo // queued jobs only
}

func newJobView(j store.Job) JobView {
	v := JobView{J: j, Hyper: j.Hyperparameters, GPU: j.GPUConfig}
	v.Estimate = j.Estimate
	switch j.Status {
	case store.JobQueued, store.JobInitializing, store.JobRunning:
		v.Active = true
	}
	return v
}
