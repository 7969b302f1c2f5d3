-- Launchers (docs/launchers.md): ephemeral agents started on Slurm or
-- Kubernetes for one queued job. A launch row survives a server restart, so
-- the reconciler can still find, watch and tear down what it started.

-- +goose Up
-- An agent bound to one job (an ephemeral, launched agent) claims only that job.
ALTER TABLE agents ADD COLUMN job_id UUID REFERENCES training_jobs(id) ON DELETE CASCADE;

CREATE TABLE launches (
  id UUID PRIMARY KEY,
  job_id UUID NOT NULL REFERENCES training_jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  launcher VARCHAR(100) NOT NULL,
  kind VARCHAR(50) NOT NULL,
  agent_id UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  external_id TEXT,
  logs_url TEXT,
  time_limit_seconds INTEGER NOT NULL,
  state VARCHAR(20) NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'submitted', 'claimed', 'ended')),
  end_reason TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  submitted_at TIMESTAMPTZ,
  claimed_at TIMESTAMPTZ,
  ended_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_launches_job ON launches(job_id, created_at);
CREATE INDEX idx_launches_open ON launches(launcher) WHERE state <> 'ended';
-- One open launch per job, even with several server replicas reconciling.
CREATE UNIQUE INDEX idx_launches_one_open ON launches(job_id) WHERE state <> 'ended';
ALTER TABLE launches ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own job launches" ON launches FOR SELECT
  USING (EXISTS (SELECT 1 FROM training_jobs j WHERE j.id = job_id AND j.user_id = auth.uid()));
GRANT SELECT ON launches TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON launches TO service_role;

-- +goose Down
DROP TABLE launches;
ALTER TABLE agents DROP COLUMN job_id;
