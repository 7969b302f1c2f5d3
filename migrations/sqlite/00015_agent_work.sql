-- Issue 15: exact preflight. Agent work items (a kind of work that is not a
-- training job: today `preflight`, a dataset's exact token profile for one
-- base model), claimed by agents like jobs, and the exact token profiles
-- they produce, keyed by (dataset, base model).

-- +goose Up
CREATE TABLE agent_work (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL, -- 'preflight' (internal/agentwork checks kinds, so a new kind needs no table rebuild)
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  dataset_id TEXT REFERENCES datasets(id) ON DELETE CASCADE, -- a preflight's (other kinds may have none)
  base_model TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_expires_at TEXT,
  error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  CHECK (kind <> 'preflight' OR dataset_id IS NOT NULL)
);
-- Never twice at once for the same (kind, dataset, model).
CREATE UNIQUE INDEX idx_agent_work_open ON agent_work(kind, dataset_id, base_model) WHERE status IN ('queued', 'running');
CREATE INDEX idx_agent_work_claim ON agent_work(status, created_at);

CREATE TABLE dataset_model_profiles (
  dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  base_model TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_profile TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (dataset_id, base_model)
);

-- +goose Down
DROP TABLE dataset_model_profiles;
DROP TABLE agent_work;
