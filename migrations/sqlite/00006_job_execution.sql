-- +goose Up
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  capabilities TEXT,
  version TEXT,
  hostname TEXT,
  last_seen_at TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  revoked_at TEXT
);

ALTER TABLE training_jobs ADD COLUMN agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL;
ALTER TABLE training_jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE training_jobs ADD COLUMN job_token_hash TEXT;
ALTER TABLE training_jobs ADD COLUMN lease_expires_at TEXT;
ALTER TABLE training_jobs ADD COLUMN attempt_started_at TEXT;
ALTER TABLE training_jobs ADD COLUMN run_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE training_jobs ADD COLUMN checkpoint TEXT;
ALTER TABLE training_jobs ADD COLUMN error_class TEXT;
ALTER TABLE training_jobs ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 3;
ALTER TABLE training_jobs ADD COLUMN tokens_per_second REAL;
CREATE INDEX idx_training_jobs_claim ON training_jobs(gpu_type, queued_at) WHERE status = 'queued';
CREATE INDEX idx_training_jobs_lease ON training_jobs(lease_expires_at) WHERE status IN ('initializing', 'running');

CREATE TABLE training_job_events (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES training_jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL DEFAULT 0,
  level TEXT NOT NULL DEFAULT 'info',
  stage TEXT,
  message TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX idx_training_job_events_job ON training_job_events(job_id, created_at);

-- SQLite cannot drop NOT NULL in place: rebuild metrics_points.
CREATE TABLE metrics_points_new (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES training_jobs(id) ON DELETE CASCADE,
  timestamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  epoch INTEGER NOT NULL,
  step INTEGER NOT NULL,
  training_loss REAL,
  validation_loss REAL,
  learning_rate REAL,
  gradient_norm REAL,
  throughput REAL,
  gpu_utilization REAL,
  tokens_per_second REAL,
  gpu_memory_gb REAL,
  mfu REAL,
  attempt INTEGER
);
INSERT INTO metrics_points_new (id, job_id, timestamp, epoch, step, training_loss, validation_loss, learning_rate, gradient_norm, throughput, gpu_utilization)
  SELECT id, job_id, timestamp, epoch, step, training_loss, validation_loss, learning_rate, gradient_norm, throughput, gpu_utilization FROM metrics_points;
DROP TABLE metrics_points;
ALTER TABLE metrics_points_new RENAME TO metrics_points;
CREATE INDEX idx_metrics_points_job_id ON metrics_points(job_id);
CREATE INDEX idx_metrics_points_timestamp ON metrics_points(job_id, timestamp DESC);
CREATE UNIQUE INDEX idx_metrics_points_job_step ON metrics_points(job_id, step);

-- +goose Down
DROP INDEX idx_metrics_points_job_step;
DROP TABLE training_job_events;
DROP TABLE agents;
