// Package notifydoc defines, once, a notification's metadata document: the
// ids and figures a notification is about, for API clients and webhook
// receivers (the text is in its title and message). The jobs, datasets and
// costs domains fill it, the store keeps it in notifications.metadata
// (encoded and decoded in internal/store/sqlstore/scan.go), and the API and
// the outbound webhooks send it.
//
// Every field is omitted when unset, so each notification type carries only
// its own keys (docs/notifications.md, "metadata"): renaming one is a breaking
// change.
package notifydoc

// Metadata is a notification's metadata.
type Metadata struct {
	// Training job notifications (job_started, job_completed, job_failed,
	// job_cancelled, job_paused, artifact_ready …).
	JobID string `json:"job_id,omitempty"`
	// ErrorClass is set on job_failed (the failure's class, possibly "").
	ErrorClass *string `json:"error_class,omitempty"`
	// ModelID is set on artifact_ready.
	ModelID string `json:"model_id,omitempty"`
	// FineTuningJobID (ftjob-…) is set on the job_failed of a /v1
	// fine-tuning job that failed before it had a training job.
	FineTuningJobID string `json:"fine_tuning_job_id,omitempty"`

	// Dataset validation notifications (dataset_ready, dataset_error).
	DatasetID string `json:"dataset_id,omitempty"`
	Errors    *int   `json:"errors,omitempty"`
	Warnings  *int   `json:"warnings,omitempty"`

	// Budget alerts: the threshold crossed (percent), the month's spend and
	// the monthly budget in USD.
	Threshold *int     `json:"threshold,omitempty"`
	Spent     *float64 `json:"spent,omitempty"`
	Budget    *float64 `json:"budget,omitempty"`
}

// Job is the metadata of a training job's notification.
func Job(jobID string) *Metadata { return &Metadata{JobID: jobID} }

// Dataset is the metadata of a dataset validation notification.
func Dataset(datasetID string, errors, warnings int) *Metadata {
	return &Metadata{DatasetID: datasetID, Errors: &errors, Warnings: &warnings}
}

// BudgetAlert is the metadata of a budget alert.
func BudgetAlert(threshold int, spent, budget float64) *Metadata {
	return &Metadata{Threshold: &threshold, Spent: &spent, Budget: &budget}
}
