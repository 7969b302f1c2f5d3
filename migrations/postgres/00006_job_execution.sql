-- Job execution: trainer agents, leases and attempts, checkpoints, the
-- event log, idempotent metric points, and run-time accounting.

-- +goose Up
CREATE TABLE agents (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name VARCHAR(200) NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  capabilities JSONB,
  version VARCHAR(50),
  hostname VARCHAR(255),
  last_seen_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  revoked_at TIMESTAMPTZ
);
-- Agents are infrastructure: only the system reads them.
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON agents TO service_role;

ALTER TABLE training_jobs
  ADD COLUMN agent_id UUID REFERENCES agents(id) ON DELETE SET NULL,
  ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN job_token_hash TEXT,
  ADD COLUMN lease_expires_at TIMESTAMPTZ,
  ADD COLUMN attempt_started_at TIMESTAMPTZ,
  ADD COLUMN run_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
  ADD COLUMN checkpoint JSONB,
  ADD COLUMN error_class VARCHAR(50),
  ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 3,
  ADD COLUMN tokens_per_second DOUBLE PRECISION;
CREATE INDEX idx_training_jobs_claim ON training_jobs(gpu_type, queued_at) WHERE status = 'queued';
CREATE INDEX idx_training_jobs_lease ON training_jobs(lease_expires_at) WHERE status IN ('initializing', 'running');

CREATE TABLE training_job_events (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id UUID NOT NULL REFERENCES training_jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL DEFAULT 0,
  level VARCHAR(20) NOT NULL DEFAULT 'info',
  stage VARCHAR(50),
  message TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_training_job_events_job ON training_job_events(job_id, created_at);
ALTER TABLE training_job_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own job events" ON training_job_events FOR SELECT
  USING (EXISTS (SELECT 1 FROM training_jobs j WHERE j.id = job_id AND j.user_id = auth.uid()));
GRANT SELECT, INSERT, UPDATE, DELETE ON training_job_events TO authenticated, service_role;

ALTER TABLE metrics_points
  ADD COLUMN tokens_per_second DOUBLE PRECISION,
  ADD COLUMN gpu_memory_gb DOUBLE PRECISION,
  ADD COLUMN mfu DOUBLE PRECISION,
  ADD COLUMN attempt INTEGER;
ALTER TABLE metrics_points ALTER COLUMN training_loss DROP NOT NULL;
ALTER TABLE metrics_points ALTER COLUMN learning_rate DROP NOT NULL;
CREATE UNIQUE INDEX idx_metrics_points_job_step ON metrics_points(job_id, step);

-- +goose Down
DROP INDEX IF EXISTS idx_metrics_points_job_step;
ALTER TABLE metrics_points DROP COLUMN tokens_per_second, DROP COLUMN gpu_memory_gb, DROP COLUMN mfu, DROP COLUMN attempt;
DROP TABLE training_job_events;
ALTER TABLE training_jobs DROP COLUMN agent_id, DROP COLUMN attempt, DROP COLUMN job_token_hash, DROP COLUMN lease_expires_at,
  DROP COLUMN attempt_started_at, DROP COLUMN run_seconds, DROP COLUMN checkpoint, DROP COLUMN error_class, DROP COLUMN max_retries,
  DROP COLUMN tokens_per_second;
DROP TABLE agents;
