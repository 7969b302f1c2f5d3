package sqlstore

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// NotificationCreate inserts a notification.
func (s *Store) NotificationCreate(ctx context.Context, p store.NotificationCreateParams) (store.Notification, error) {
	n := store.Notification{ID: uuid.NewString(), UserID: p.UserID, Type: p.Type, Title: p.Title, Message: p.Message,
		Priority: p.Priority, CreatedAt: p.At.UTC().Truncate(time.Millisecond)}
	if p.At.IsZero() {
		return n, errNoTime("NotificationCreateParams")
	}
	if n.Priority == "" {
		n.Priority = "medium"
	}
	if p.ActionURL != "" {
		n.ActionURL = &p.ActionURL
	}
	n.Metadata = p.Metadata
	err := s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, `INSERT INTO notifications (id, user_id, type, title, message, priority, read, action_url, metadata, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, n.ID, n.UserID, n.Type, n.Title, n.Message, n.Priority, false, n.ActionURL, optDocArg(n.Metadata), n.CreatedAt)
		return err
	})
	return n, err
}

// NotificationList returns the user's newest notifications and the unread count.
func (s *Store) NotificationList(ctx context.Context, userID string, unreadOnly bool, limit int) ([]store.Notification, int, error) {
	var out []store.Notification
	var unread int
	err := s.readTx(ctx, func(x q) error {
		if err := x.queryRow(ctx, "SELECT count(*) FROM notifications WHERE user_id = ? AND read = ?", userID, false).Scan(&unread); err != nil {
			return err
		}
		where := "user_id = ?"
		args := []any{userID}
		if unreadOnly {
			where += " AND read = ?"
			args = append(args, false)
		}
		rows, err := x.query(ctx, "SELECT id, user_id, type, title, message, priority, read, action_url, metadata, created_at FROM notifications WHERE "+where+
			" ORDER BY created_at DESC, id LIMIT ?", append(args, limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n store.Notification
			var prio string
			var read *bool
			var action string
			if err := rows.Scan(&n.ID, &n.UserID, &n.Type, &n.Title, &n.Message, nstr{&prio}, &read, nstr{&action}, optDoc[notifydoc.Metadata]{&n.Metadata}, ts{&n.CreatedAt}); err != nil {
				return err
			}
			n.Priority, n.Read = prio, read != nil && *read
			if action != "" {
				n.ActionURL = &action
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	return out, unread, err
}

// NotificationMarkRead marks one of the user's notifications read.
func (s *Store) NotificationMarkRead(ctx context.Context, userID, id string) error {
	if !validID(id) {
		return apperr.NotFound("notification")
	}
	return s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE notifications SET read = ? WHERE id = ? AND user_id = ?", true, id, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.NotFound("notification")
		}
		return nil
	})
}

// NotificationMarkAllRead marks all the user's notifications read.
func (s *Store) NotificationMarkAllRead(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(x q) error {
		res, err := x.exec(ctx, "UPDATE notifications SET read = ? WHERE user_id = ? AND read = ?", true, userID, false)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
