-- +goose Up
CREATE UNIQUE INDEX idx_cost_records_storage_day ON cost_records(user_id, billing_period) WHERE cost_type = 'storage';

CREATE TABLE budget_alerts (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  month TEXT NOT NULL,
  threshold INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (user_id, month, threshold)
);

-- +goose Down
DROP TABLE budget_alerts;
DROP INDEX idx_cost_records_storage_day;
