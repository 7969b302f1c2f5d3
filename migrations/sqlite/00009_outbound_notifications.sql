-- Outbound notifications: per-user webhook and email channels, and one
-- delivery row per notification and channel (the delivery log).

-- +goose Up
CREATE TABLE notification_channels (
  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  webhook_url TEXT,
  webhook_secret TEXT,
  email_enabled INTEGER NOT NULL DEFAULT 0,
  email_address TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE notification_deliveries (
  id TEXT PRIMARY KEY,
  notification_id TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
  target TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT NOT NULL,
  last_error TEXT,
  response_code INTEGER,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  delivered_at TEXT,
  UNIQUE (notification_id, channel)
);
CREATE INDEX idx_notification_deliveries_due ON notification_deliveries(status, next_attempt_at);
CREATE INDEX idx_notification_deliveries_user ON notification_deliveries(user_id, created_at DESC);

-- +goose Down
DROP TABLE notification_deliveries;
DROP TABLE notification_channels;
