-- Issue 15: exact preflight. Agent work items (a kind of work that is not a
-- training job: today `preflight`, a dataset's exact token profile for one
-- base model), claimed by agents like jobs, and the exact token profiles
-- they produce, keyed by (dataset, base model).

-- +goose Up
CREATE TABLE agent_work (
  id UUID PRIMARY KEY,
  kind VARCHAR(20) NOT NULL, -- 'preflight' (internal/agentwork checks kinds, so a new kind needs no table rewrite)
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  dataset_id UUID REFERENCES datasets(id) ON DELETE CASCADE, -- a preflight's (other kinds may have none)
  base_model VARCHAR(200) NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  agent_id UUID REFERENCES agents(id) ON DELETE SET NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_expires_at TIMESTAMPTZ,
  error TEXT,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  CHECK (kind <> 'preflight' OR dataset_id IS NOT NULL)
);
-- Never twice at once for the same (kind, dataset, model).
CREATE UNIQUE INDEX idx_agent_work_open ON agent_work(kind, dataset_id, base_model) WHERE status IN ('queued', 'running');
CREATE INDEX idx_agent_work_claim ON agent_work(status, created_at);
ALTER TABLE agent_work ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own agent work" ON agent_work FOR SELECT USING (auth.uid() = user_id);
GRANT SELECT ON agent_work TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON agent_work TO service_role;

CREATE TABLE dataset_model_profiles (
  dataset_id UUID NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  base_model VARCHAR(200) NOT NULL,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  token_profile JSONB NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (dataset_id, base_model)
);
ALTER TABLE dataset_model_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own dataset profiles" ON dataset_model_profiles FOR SELECT USING (auth.uid() = user_id);
GRANT SELECT ON dataset_model_profiles TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON dataset_model_profiles TO service_role;

-- +goose Down
DROP TABLE dataset_model_profiles;
DROP TABLE agent_work;
