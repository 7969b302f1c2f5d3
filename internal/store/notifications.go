package store

import (
	"context"
	"time"

	"github.com/brightrun/brightrun/internal/notifydoc"
)

// Notification is a row of the spec's notifications table.
type Notification struct {
	ID        string              `json:"id"`
	UserID    string              `json:"user_id"`
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Message   string              `json:"message"`
	Priority  string              `json:"priority"`
	Read      bool                `json:"read"`
	ActionURL *string             `json:"action_url"`
	Metadata  *notifydoc.Metadata `json:"metadata"` // nil: none (null)
	CreatedAt time.Time           `json:"created_at"`
}

// NotificationCreateParams creates a notification (system).
type NotificationCreateParams struct {
	UserID, Type, Title, Message, Priority string
	ActionURL                              string
	Metadata                               *notifydoc.Metadata
	At                                     time.Time // when it happened (the caller's clock)
}

// NotificationStore persists notifications.
type NotificationStore interface {
	NotificationCreate(ctx context.Context, p NotificationCreateParams) (Notification, error)
	NotificationList(ctx context.Context, userID string, unreadOnly bool, limit int) ([]Notification, int, error)
	NotificationMarkRead(ctx context.Context, userID, id string) error
	NotificationMarkAllRead(ctx context.Context, userID string) (int64, error)
}
