package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// enqueueBatch bounds how many deliveries one DeliveriesEnqueue creates.
const enqueueBatch = 200

// dueLease is how long DeliveriesDue hides a delivery from other workers
// while it is being attempted.
const dueLease = 2 * time.Minute

// ChannelsGet returns the user's outbound channels.
func (s *Store) ChannelsGet(ctx context.Context, userID string) (store.NotificationChannels, error) {
	c := store.NotificationChannels{UserID: userID}
	err := s.readTx(ctx, func(x q) error {
		var enabled *bool
		err := x.queryRow(ctx, `SELECT webhook_url, webhook_secret, email_enabled, email_address, webhook_format, created_at, updated_at
			FROM notification_channels WHERE user_id = ?`, userID).Scan(nstr{&c.WebhookURL}, nstr{&c.WebhookSecret}, &enabled, nstr{&c.EmailAddress}, &c.WebhookFormat, ts{&c.CreatedAt}, ts{&c.UpdatedAt})
		if errors.Is(err, errNoRows) {
			c.WebhookFormat = "brightrun"
			return nil
		}
		c.EmailEnabled = enabled != nil && *enabled
		return err
	})
	return c, err
}

// ChannelsPut saves the user's outbound channels.
func (s *Store) ChannelsPut(ctx context.Context, c store.NotificationChannels) (store.NotificationChannels, error) {
	now, err := stamp(c.UpdatedAt, "NotificationChannels.UpdatedAt")
	if err != nil {
		return c, err
	}
	err = s.writeTx(ctx, func(x q) error {
		format := c.WebhookFormat
		if format == "" {
			format = "brightrun"
		}
		_, err := x.exec(ctx, `INSERT INTO notification_channels (user_id, webhook_url, webhook_secret, email_enabled, email_address, webhook_format, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret,
			email_enabled = excluded.email_enabled, email_address = excluded.email_address, webhook_format = excluded.webhook_format, updated_at = excluded.updated_at`,
			c.UserID, nullIfEmpty(c.WebhookURL), nullIfEmpty(c.WebhookSecret), c.EmailEnabled, nullIfEmpty(c.EmailAddress), format, now, now)
		return err
	})
	if err != nil {
		return c, err
	}
	return s.ChannelsGet(ctx, c.UserID)
}

// DeliveriesEnqueue inserts pending deliveries for new notifications.
func (s *Store) DeliveriesEnqueue(ctx context.Context, now time.Time) (int, error) {
	type cand struct{ notif, user, channel, target string }
	n := 0
	err := s.writeTx(ctx, func(x q) error {
		var cands []cand
		for _, ch := range []struct{ name, target, enabled string }{
			{"webhook", "c.webhook_url", "c.webhook_url IS NOT NULL AND c.webhook_url <> ''"},
			{"email", "c.email_address", "c.email_enabled = ? AND c.email_address IS NOT NULL AND c.email_address <> ''"},
		} {
			args := []any{}
			if ch.name == "email" {
				args = append(args, true)
			}
			args = append(args, ch.name, enqueueBatch-len(cands))
			rows, err := x.query(ctx, `SELECT n.id, n.user_id, `+ch.target+` FROM notifications n JOIN notification_channels c ON c.user_id = n.user_id
				WHERE `+ch.enabled+` AND n.created_at >= c.updated_at
				AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = n.id AND d.channel = ?)
				ORDER BY n.created_at, n.id LIMIT ?`, args...)
			got, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (cand, error) {
				c := cand{channel: ch.name}
				return c, sc.Scan(&c.notif, &c.user, &c.target)
			})
			if err != nil {
				return err
			}
			cands = append(cands, got...)
			if len(cands) >= enqueueBatch {
				break
			}
		}
		for _, c := range cands {
			res, err := x.exec(ctx, `INSERT INTO notification_deliveries (id, notification_id, user_id, channel, target, status, attempts, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (notification_id, channel) DO NOTHING`,
				uuid.NewString(), c.notif, c.user, c.channel, c.target, now, now)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	return n, err
}

const deliveryCols = `d.id, d.notification_id, d.user_id, d.channel, d.target, d.status, d.attempts, d.next_attempt_at, d.last_error, d.response_code, d.created_at, d.delivered_at`

func scanDelivery(d *store.Delivery) []any {
	return []any{&d.ID, &d.NotificationID, &d.UserID, &d.Channel, &d.Target, &d.Status, &d.Attempts, ts{&d.NextAttemptAt}, nstr{&d.LastError}, &d.ResponseCode, ts{&d.CreatedAt}, nts{&d.DeliveredAt}}
}

// DeliveriesDue returns due pending deliveries and leases them for a while
// so that a second worker does not send them twice.
func (s *Store) DeliveriesDue(ctx context.Context, now time.Time, limit int) ([]store.DueDelivery, error) {
	var out []store.DueDelivery
	err := s.writeTx(ctx, func(x q) error {
		rows, err := x.query(ctx, `SELECT `+deliveryCols+`, n.type, n.title, n.message, n.priority, n.action_url, n.metadata, n.created_at, c.webhook_secret, c.webhook_format
			FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
			LEFT JOIN notification_channels c ON c.user_id = d.user_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?`, now, limit)
		out, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (store.DueDelivery, error) {
			var dd store.DueDelivery
			var prio, action string
			n := &dd.Notification
			err := sc.Scan(append(scanDelivery(&dd.Delivery), &n.Type, &n.Title, &n.Message, nstr{&prio}, nstr{&action}, optDoc[notifydoc.Metadata]{&n.Metadata}, ts{&n.CreatedAt}, nstr{&dd.WebhookSecret}, nstr{&dd.WebhookFormat})...)
			n.ID, n.UserID, n.Priority = dd.NotificationID, dd.UserID, prio
			if action != "" {
				n.ActionURL = &action
			}
			dd.Title, dd.Type = n.Title, n.Type
			return dd, err
		})
		if err != nil {
			return err
		}
		for _, d := range out {
			if _, err := x.exec(ctx, "UPDATE notification_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'", now.Add(dueLease), d.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// DeliveryResult records one attempt.
func (s *Store) DeliveryResult(ctx context.Context, id string, delivered bool, code int, errMsg string, next *time.Time, now time.Time) error {
	if !validID(id) {
		return apperr.NotFound("delivery")
	}
	var codeArg any
	if code != 0 {
		codeArg = code
	}
	return s.writeTx(ctx, func(x q) error {
		var err error
		switch {
		case delivered:
			_, err = x.exec(ctx, `UPDATE notification_deliveries SET status = 'delivered', attempts = attempts + 1, response_code = ?, last_error = NULL, delivered_at = ?
				WHERE id = ?`, codeArg, now, id)
		case next == nil:
			_, err = x.exec(ctx, `UPDATE notification_deliveries SET status = 'failed', attempts = attempts + 1, response_code = ?, last_error = ? WHERE id = ?`,
				codeArg, nullIfEmpty(errMsg), id)
		default:
			_, err = x.exec(ctx, `UPDATE notification_deliveries SET attempts = attempts + 1, response_code = ?, last_error = ?, next_attempt_at = ? WHERE id = ?`,
				codeArg, nullIfEmpty(errMsg), *next, id)
		}
		return err
	})
}

// DeliveriesList returns the user's delivery log, newest first.
func (s *Store) DeliveriesList(ctx context.Context, userID string, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, `SELECT `+deliveryCols+`, n.type, n.title FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE d.user_id = ? ORDER BY d.created_at DESC, d.id LIMIT ?`, userID, limit)
		out, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (store.Delivery, error) {
			var d store.Delivery
			err := sc.Scan(append(scanDelivery(&d), &d.Type, &d.Title)...)
			return d, err
		})
		return err
	})
	return out, err
}
