-- Outbound notifications: per-user webhook and email channels, and one
-- delivery row per notification and channel (the delivery log).

-- +goose Up
CREATE TABLE notification_channels (
  user_id UUID PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
  webhook_url TEXT,
  webhook_secret TEXT,
  email_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  email_address TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
ALTER TABLE notification_channels ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own notification channels" ON notification_channels FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can create own notification channels" ON notification_channels FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own notification channels" ON notification_channels FOR UPDATE USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_channels TO authenticated, service_role;

CREATE TABLE notification_deliveries (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  notification_id UUID NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
  user_id UUID NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
  target TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL,
  last_error TEXT,
  response_code INTEGER,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  delivered_at TIMESTAMPTZ,
  UNIQUE (notification_id, channel)
);
CREATE INDEX idx_notification_deliveries_due ON notification_deliveries(status, next_attempt_at);
CREATE INDEX idx_notification_deliveries_user ON notification_deliveries(user_id, created_at DESC);
ALTER TABLE notification_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can view own notification deliveries" ON notification_deliveries FOR SELECT USING (auth.uid() = user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_deliveries TO authenticated, service_role;

-- +goose Down
DROP TABLE notification_deliveries;
DROP TABLE notification_channels;
