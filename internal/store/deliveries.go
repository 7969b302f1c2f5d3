package store

import (
	"context"
	"time"
)

// NotificationChannels are a user's outbound notification settings.
type NotificationChannels struct {
	UserID        string `json:"-"`
	WebhookURL    string `json:"webhook_url"`
	WebhookSecret string `json:"-"`
	EmailEnabled  bool   `json:"email_enabled"`
	EmailAddress  string `json:"email_address"`
	// WebhookFormat is "brightrun" (BrightRun's payload and X-BrightRun-*
	// signature) or "standard" (Standard Webhooks: webhook-id,
	// webhook-timestamp, webhook-signature; fine-tuning jobs in OpenAI's
	// event shape).
	WebhookFormat string    `json:"webhook_format"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"` // ChannelsPut stamps it with the caller's time
}

// Delivery is one notification sent (or to be sent) on one channel.
type Delivery struct {
	ID             string     `json:"id"`
	NotificationID string     `json:"notification_id"`
	UserID         string     `json:"-"`
	Channel        string     `json:"channel"` // webhook | email
	Target         string     `json:"target"`
	Status         string     `json:"status"` // pending | delivered | failed
	Attempts       int        `json:"attempts"`
	NextAttemptAt  time.Time  `json:"next_attempt_at"`
	LastError      string     `json:"last_error"`
	ResponseCode   *int       `json:"response_code"`
	CreatedAt      time.Time  `json:"created_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	// Title and Type are the notification's, for the log.
	Title string `json:"title"`
	Type  string `json:"type"`
}

// DueDelivery is a delivery to attempt, with what the sender needs.
type DueDelivery struct {
	Delivery
	Notification  Notification
	WebhookSecret string
	WebhookFormat string
}

// DeliveryStore persists outbound channels and the delivery log.
type DeliveryStore interface {
	// ChannelsGet returns the user's channels (zero values when none saved).
	ChannelsGet(ctx context.Context, userID string) (NotificationChannels, error)
	// ChannelsPut saves the user's channels and stamps updated_at.
	ChannelsPut(ctx context.Context, c NotificationChannels) (NotificationChannels, error)
	// DeliveriesEnqueue creates pending deliveries (system) for notifications
	// created since the user's channels were last updated, one per enabled
	// channel, at most a bounded batch per call; it returns how many.
	DeliveriesEnqueue(ctx context.Context, now time.Time) (int, error)
	// DeliveriesDue lists pending deliveries whose next attempt is due (system).
	DeliveriesDue(ctx context.Context, now time.Time, limit int) ([]DueDelivery, error)
	// DeliveryResult records an attempt (system): delivered, or failed when
	// next is nil, or rescheduled to *next.
	DeliveryResult(ctx context.Context, id string, delivered bool, code int, errMsg string, next *time.Time, now time.Time) error
	// DeliveriesList is the user's delivery log, newest first.
	DeliveriesList(ctx context.Context, userID string, limit int) ([]Delivery, error)
}
