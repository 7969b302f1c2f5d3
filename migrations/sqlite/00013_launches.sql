-- Launchers (docs/launchers.md): ephemeral agents started on Slurm or
-- Kubernetes for one queued job. A launch row survives a server restart, so
-- the reconciler can still find, watch and tear down what it started.

-- +goose Up
-- An agent bound to one job (an ephemeral, launched agent) claims only that job.
ALTER TABLE agents ADD COLUMN job_id TEXT REFERENCES training_jobs(id) ON DELETE CASCADE;

CREATE TABLE launches (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES training_jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,            -- the attempt the launch is for (the job's attempt + 1 when launched)
  launcher TEXT NOT NULL,              -- the configured launcher's name
  kind TEXT NOT NULL,                  -- slurm | kubernetes | …
  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  external_id TEXT,                    -- Slurm job id, Kubernetes Job name
  logs_url TEXT,
  time_limit_seconds INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'requested', -- requested | submitted | claimed | ended
  end_reason TEXT,
  created_at TEXT NOT NULL,
  submitted_at TEXT,
  claimed_at TEXT,
  ended_at TEXT,
  updated_at TEXT NOT NULL
);
CREATE INDEX idx_launches_job ON launches(job_id, created_at);
CREATE INDEX idx_launches_open ON launches(launcher) WHERE state <> 'ended';
-- One open launch per job, even with several server replicas reconciling.
CREATE UNIQUE INDEX idx_launches_one_open ON launches(job_id) WHERE state <> 'ended';

-- +goose Down
DROP TABLE launches;
ALTER TABLE agents DROP COLUMN job_id;
