-- Training configuration: denormalised job columns for queries and
-- self-calibrating estimates, cancellation requests, and per-user settings
-- (monthly budget).

-- +goose Up
ALTER TABLE training_jobs
  ADD COLUMN base_model VARCHAR(200),
  ADD COLUMN gpu_type VARCHAR(100),
  ADD COLUMN num_gpus INTEGER,
  ADD COLUMN estimate JSONB,
  ADD COLUMN measured_tokens_per_second DOUBLE PRECISION,
  ADD COLUMN cancel_requested_at TIMESTAMPTZ;
CREATE INDEX idx_training_jobs_calibration ON training_jobs(gpu_type, base_model) WHERE status = 'completed';
CREATE INDEX idx_training_jobs_user_created ON training_jobs(user_id, created_at DESC);

CREATE TABLE user_settings (
  user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
  monthly_budget DECIMAL(10, 2),
  budget_hard_stop BOOLEAN NOT NULL DEFAULT TRUE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
ALTER TABLE user_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own settings" ON user_settings FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own settings" ON user_settings FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own settings" ON user_settings FOR UPDATE USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON user_settings TO authenticated, service_role;

-- +goose Down
DROP TABLE user_settings;
DROP INDEX IF EXISTS idx_training_jobs_calibration;
DROP INDEX IF EXISTS idx_training_jobs_user_created;
ALTER TABLE training_jobs DROP COLUMN base_model, DROP COLUMN gpu_type, DROP COLUMN num_gpus, DROP COLUMN estimate,
  DROP COLUMN measured_tokens_per_second, DROP COLUMN cancel_requested_at;
