package jobs

import (
	"fmt"

	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
)

// JobURL is the page of a job; ModelURL the page of a model.
func JobURL(id string) string   { return "/training/jobs/" + id }
func ModelURL(id string) string { return "/models/" + id }

func startedNotice(e store.ExecJob) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: e.UserID, Type: "job_started", Priority: "low",
		Title: "Training started: " + e.DatasetName, Message: "An agent picked up your job on " + e.GPUType + ".",
		ActionURL: JobURL(e.ID), Metadata: notifydoc.Job(e.ID)}
}

func claimedEvent(e store.ExecJob) string {
	msg := fmt.Sprintf("claimed by an agent (attempt %d)", e.Attempt)
	if e.Checkpoint != nil {
		msg += ", resuming from its last checkpoint"
	}
	return msg
}

func requeuedEvent(e store.ExecJob, message string) string {
	msg := fmt.Sprintf("requeued (retry %d of %d): %s", e.RetryCount+1, e.MaxRetries, message)
	if e.Checkpoint != nil {
		msg += "; the next attempt resumes from the last checkpoint"
	}
	return msg
}

func failedNotice(e store.ExecJob, message, class string) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: e.UserID, Type: "job_failed", Priority: "high", Title: "Training failed: " + e.DatasetName,
		Message: message, ActionURL: JobURL(e.ID), Metadata: &notifydoc.Metadata{JobID: e.ID, ErrorClass: &class}}
}

func stoppedNotice(e store.ExecJob, step int) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: e.UserID, Type: "job_cancelled", Priority: "low", Title: "Training cancelled: " + e.DatasetName,
		Message: fmt.Sprintf("The job stopped at step %d; the time used is billed.", step), ActionURL: JobURL(e.ID), Metadata: notifydoc.Job(e.ID)}
}

func cancelledQueuedNotice(j store.Job) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: j.UserID, Type: "job_cancelled", Priority: "low", Title: "Training job cancelled",
		Message:   fmt.Sprintf("The job on %q was cancelled before it started; nothing was charged.", j.DatasetName),
		ActionURL: JobURL(j.ID), Metadata: notifydoc.Job(j.ID)}
}

func completedNotice(e store.ExecJob, message string) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: e.UserID, Type: "job_completed", Title: "Training complete: " + e.DatasetName,
		Message: message, ActionURL: JobURL(e.ID), Metadata: notifydoc.Job(e.ID)}
}

func artifactNotice(e store.ExecJob, name, modelID string) store.NotificationCreateParams {
	return store.NotificationCreateParams{UserID: e.UserID, Type: "artifact_ready", Priority: "medium", Title: "Adapter ready: " + name,
		Message: "Download it or copy the snippet to load it with PEFT or serve it with vLLM.", ActionURL: ModelURL(modelID),
		Metadata: &notifydoc.Metadata{JobID: e.ID, ModelID: modelID}}
}
