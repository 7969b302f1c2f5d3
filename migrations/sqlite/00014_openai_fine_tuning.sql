-- The OpenAI-compatible fine-tuning face (/v1): one row per fine-tuning job
-- created through it. The row exists from the request on, while its file is
-- still validating (status validating_files); once the file is ready the
-- BrightRun training job is created and job_id points at it, and the job's
-- own status is what /v1 reports. Pausing: a pause request on a running job
-- (pause_requested_at) waits for the next registered checkpoint
-- (checkpoint_at). Webhook channels may ask for Standard Webhooks signing.

-- +goose Up
CREATE TABLE openai_fine_tuning_jobs (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  job_id TEXT REFERENCES training_jobs(id) ON DELETE SET NULL,
  model TEXT NOT NULL,
  training_file TEXT NOT NULL,
  validation_file TEXT,
  suffix TEXT,
  seed INTEGER NOT NULL,
  metadata TEXT,
  request TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('validating_files', 'created', 'failed', 'cancelled')),
  error_code TEXT,
  error_message TEXT,
  error_param TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE INDEX idx_openai_ft_jobs_user ON openai_fine_tuning_jobs(user_id, created_at DESC, id DESC);
CREATE INDEX idx_openai_ft_jobs_pending ON openai_fine_tuning_jobs(status) WHERE status = 'validating_files';
CREATE UNIQUE INDEX idx_openai_ft_jobs_job ON openai_fine_tuning_jobs(job_id);

ALTER TABLE training_jobs ADD COLUMN pause_requested_at TEXT;
ALTER TABLE training_jobs ADD COLUMN checkpoint_at TEXT;
ALTER TABLE notification_channels ADD COLUMN webhook_format TEXT NOT NULL DEFAULT 'brightrun';

-- +goose Down
ALTER TABLE notification_channels DROP COLUMN webhook_format;
ALTER TABLE training_jobs DROP COLUMN checkpoint_at;
ALTER TABLE training_jobs DROP COLUMN pause_requested_at;
DROP TABLE openai_fine_tuning_jobs;
