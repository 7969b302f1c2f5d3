-- Costs: one storage accrual per user and day, and budget alerts sent once
-- per threshold and month.

-- +goose Up
CREATE UNIQUE INDEX idx_cost_records_storage_day ON cost_records(user_id, billing_period) WHERE cost_type = 'storage';

CREATE TABLE budget_alerts (
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  month DATE NOT NULL,
  threshold INTEGER NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (user_id, month, threshold)
);
ALTER TABLE budget_alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own budget alerts" ON budget_alerts FOR SELECT USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON budget_alerts TO authenticated, service_role;

-- +goose Down
DROP TABLE budget_alerts;
DROP INDEX IF EXISTS idx_cost_records_storage_day;
