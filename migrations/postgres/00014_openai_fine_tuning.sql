-- The OpenAI-compatible fine-tuning face (/v1): one row per fine-tuning job
-- created through it. The row exists from the request on, while its file is
-- still validating (status validating_files); once the file is ready the
-- BrightRun training job is created and job_id points at it, and the job's
-- own status is what /v1 reports. Pausing: a pause request on a running job
-- (pause_requested_at) waits for the next registered checkpoint
-- (checkpoint_at). Webhook channels may ask for Standard Webhooks signing.

-- +goose Up
CREATE TABLE openai_fine_tuning_jobs (
  id UUID PRIMARY KEY,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  job_id UUID REFERENCES training_jobs(id) ON DELETE SET NULL,
  model TEXT NOT NULL,
  training_file UUID NOT NULL,
  validation_file UUID,
  suffix TEXT,
  seed BIGINT NOT NULL,
  metadata JSONB,
  request JSONB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('validating_files', 'created', 'failed', 'cancelled')),
  error_code TEXT,
  error_message TEXT,
  error_param TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  finished_at TIMESTAMPTZ
);
CREATE INDEX idx_openai_ft_jobs_user ON openai_fine_tuning_jobs(user_id, created_at DESC, id DESC);
CREATE INDEX idx_openai_ft_jobs_pending ON openai_fine_tuning_jobs(status) WHERE status = 'validating_files';
CREATE UNIQUE INDEX idx_openai_ft_jobs_job ON openai_fine_tuning_jobs(job_id);
ALTER TABLE openai_fine_tuning_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own fine-tuning jobs" ON openai_fine_tuning_jobs FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own fine-tuning jobs" ON openai_fine_tuning_jobs FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own fine-tuning jobs" ON openai_fine_tuning_jobs FOR UPDATE USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE ON openai_fine_tuning_jobs TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON openai_fine_tuning_jobs TO service_role;

ALTER TABLE training_jobs ADD COLUMN pause_requested_at TIMESTAMPTZ, ADD COLUMN checkpoint_at TIMESTAMPTZ;
ALTER TABLE notification_channels ADD COLUMN webhook_format TEXT NOT NULL DEFAULT 'brightrun';

-- +goose Down
ALTER TABLE notification_channels DROP COLUMN webhook_format;
ALTER TABLE training_jobs DROP COLUMN checkpoint_at, DROP COLUMN pause_requested_at;
DROP TABLE openai_fine_tuning_jobs;
