-- +goose Up
ALTER TABLE training_jobs ADD COLUMN base_model TEXT;
ALTER TABLE training_jobs ADD COLUMN gpu_type TEXT;
ALTER TABLE training_jobs ADD COLUMN num_gpus INTEGER;
ALTER TABLE training_jobs ADD COLUMN estimate TEXT;
ALTER TABLE training_jobs ADD COLUMN measured_tokens_per_second REAL;
ALTER TABLE training_jobs ADD COLUMN cancel_requested_at TEXT;
CREATE INDEX idx_training_jobs_calibration ON training_jobs(gpu_type, base_model) WHERE status = 'completed';
CREATE INDEX idx_training_jobs_user_created ON training_jobs(user_id, created_at DESC);

CREATE TABLE user_settings (
  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  monthly_budget REAL,
  budget_hard_stop INTEGER NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- +goose Down
DROP TABLE user_settings;
DROP INDEX idx_training_jobs_calibration;
DROP INDEX idx_training_jobs_user_created;
ALTER TABLE training_jobs DROP COLUMN base_model;
ALTER TABLE training_jobs DROP COLUMN gpu_type;
ALTER TABLE training_jobs DROP COLUMN num_gpus;
ALTER TABLE training_jobs DROP COLUMN estimate;
ALTER TABLE training_jobs DROP COLUMN measured_tokens_per_second;
ALTER TABLE training_jobs DROP COLUMN cancel_requested_at;
