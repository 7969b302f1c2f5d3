package openai

import (
	"context"

	"github.com/brightrun/brightrun/internal/store"
)

// webhookTypes maps job outcome notifications onto OpenAI's event types.
var webhookTypes = map[string]string{
	"job_completed": "fine_tuning.job.succeeded",
	"job_failed":    "fine_tuning.job.failed",
	"job_cancelled": "fine_tuning.job.cancelled",
}

// WebhookData is the data of a fine_tuning.job.* event.
type WebhookData struct {
	ID string `json:"id"`
}

// StandardEvent is the outbound.EventMapper of the /v1 face: the outcome
// of a job created through /v1 becomes fine_tuning.job.succeeded, .failed
// or .cancelled with its ftjob- id; anything else is not an OpenAI event.
func (s *FineTuning) StandardEvent(ctx context.Context, n store.Notification) (string, any, bool) {
	typ, ok := webhookTypes[n.Type]
	if !ok {
		return "", nil, false
	}
	if n.Metadata == nil {
		return "", nil, false
	}
	meta := *n.Metadata
	if meta.FineTuningJobID != "" {
		return typ, WebhookData{ID: meta.FineTuningJobID}, true
	}
	if meta.JobID == "" {
		return "", nil, false
	}
	f, err := s.Store.FineTuneByJob(store.AsSystem(ctx), n.UserID, meta.JobID)
	if err != nil {
		return "", nil, false // a job created on /api: sent as brightrun.<type>
	}
	return typ, WebhookData{ID: JobID(f.ID)}, true
}
