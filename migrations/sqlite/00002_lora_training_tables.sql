-- The spec's six tables in SQLite types: UUIDs and timestamps as TEXT
-- (timestamps as fixed-width UTC ISO-8601 so they sort), JSON as TEXT,
-- decimals as REAL, booleans as INTEGER 0/1. Same columns as PostgreSQL.

-- +goose Up
CREATE TABLE datasets (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (length(name) <= 200),
  description TEXT,
  format TEXT DEFAULT 'brightrun_lora_v4',
  status TEXT DEFAULT 'uploading',
  storage_bucket TEXT DEFAULT 'lora-datasets',
  storage_path TEXT NOT NULL UNIQUE,
  file_name TEXT NOT NULL,
  file_size INTEGER NOT NULL,
  total_training_pairs INTEGER,
  total_validation_pairs INTEGER,
  total_tokens INTEGER,
  avg_turns_per_conversation REAL,
  avg_tokens_per_turn REAL,
  training_ready INTEGER DEFAULT 0,
  validated_at TEXT,
  validation_errors TEXT,
  sample_data TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  deleted_at TEXT
);
CREATE INDEX idx_datasets_user_id ON datasets(user_id);
CREATE INDEX idx_datasets_status ON datasets(status) WHERE deleted_at IS NULL;
CREATE INDEX idx_datasets_created_at ON datasets(created_at DESC);

CREATE TABLE training_jobs (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE RESTRICT,
  preset_id TEXT NOT NULL,
  hyperparameters TEXT NOT NULL,
  gpu_config TEXT NOT NULL,
  status TEXT DEFAULT 'queued',
  current_stage TEXT DEFAULT 'queued',
  progress REAL DEFAULT 0,
  current_epoch INTEGER DEFAULT 0,
  total_epochs INTEGER NOT NULL,
  current_step INTEGER DEFAULT 0,
  total_steps INTEGER,
  current_metrics TEXT,
  queued_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at TEXT,
  completed_at TEXT,
  estimated_completion_at TEXT,
  current_cost REAL DEFAULT 0,
  estimated_total_cost REAL NOT NULL,
  final_cost REAL,
  error_message TEXT,
  error_stack TEXT,
  retry_count INTEGER DEFAULT 0,
  external_job_id TEXT UNIQUE,
  artifact_id TEXT REFERENCES model_artifacts(id),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_training_jobs_user_id ON training_jobs(user_id);
CREATE INDEX idx_training_jobs_status ON training_jobs(status);
CREATE INDEX idx_training_jobs_dataset_id ON training_jobs(dataset_id);

CREATE TABLE metrics_points (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES training_jobs(id) ON DELETE CASCADE,
  timestamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  epoch INTEGER NOT NULL,
  step INTEGER NOT NULL,
  training_loss REAL NOT NULL,
  validation_loss REAL,
  learning_rate REAL NOT NULL,
  gradient_norm REAL,
  throughput REAL,
  gpu_utilization REAL
);
CREATE INDEX idx_metrics_points_job_id ON metrics_points(job_id);
CREATE INDEX idx_metrics_points_timestamp ON metrics_points(job_id, timestamp DESC);

CREATE TABLE model_artifacts (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  job_id TEXT NOT NULL UNIQUE REFERENCES training_jobs(id) ON DELETE RESTRICT,
  dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE RESTRICT,
  name TEXT NOT NULL,
  version TEXT DEFAULT '1.0.0',
  description TEXT,
  status TEXT DEFAULT 'stored',
  deployed_at TEXT,
  quality_metrics TEXT NOT NULL,
  training_summary TEXT NOT NULL,
  configuration TEXT NOT NULL,
  artifacts TEXT NOT NULL,
  parent_model_id TEXT REFERENCES model_artifacts(id),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  deleted_at TEXT
);
CREATE INDEX idx_model_artifacts_user_id ON model_artifacts(user_id);
CREATE INDEX idx_model_artifacts_job_id ON model_artifacts(job_id);

CREATE TABLE cost_records (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  job_id TEXT REFERENCES training_jobs(id) ON DELETE SET NULL,
  cost_type TEXT NOT NULL,
  amount REAL NOT NULL,
  details TEXT,
  billing_period TEXT NOT NULL,
  recorded_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_cost_records_user_id ON cost_records(user_id);
CREATE INDEX idx_cost_records_billing_period ON cost_records(user_id, billing_period DESC);

CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  title TEXT NOT NULL,
  message TEXT NOT NULL,
  priority TEXT DEFAULT 'medium',
  read INTEGER DEFAULT 0,
  action_url TEXT,
  metadata TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_notifications_user_id ON notifications(user_id);
CREATE INDEX idx_notifications_read ON notifications(user_id, read, created_at DESC);

-- +goose StatementBegin
CREATE TRIGGER update_datasets_updated_at AFTER UPDATE ON datasets
WHEN NEW.updated_at = OLD.updated_at BEGIN
  UPDATE datasets SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER update_training_jobs_updated_at AFTER UPDATE ON training_jobs
WHEN NEW.updated_at = OLD.updated_at BEGIN
  UPDATE training_jobs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER update_model_artifacts_updated_at AFTER UPDATE ON model_artifacts
WHEN NEW.updated_at = OLD.updated_at BEGIN
  UPDATE model_artifacts SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE notifications;
DROP TABLE cost_records;
DROP TABLE metrics_points;
DROP TABLE training_jobs;
DROP TABLE model_artifacts;
DROP TABLE datasets;
