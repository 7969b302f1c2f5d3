// Package notify is the in-app notification domain: the API behind the bell
// and the notifications page. Notifications are created by the domains that
// have news (datasets, jobs); this package lists them and marks them read.
package notify

import (
	"context"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// Service holds the rules: page sizes and what a list answer contains.
type Service struct {
	Store store.Store
}

// ListParams choose which notifications to list.
type ListParams struct {
	UserID     string
	UnreadOnly bool
	Limit      int // 1..100
}

// List is the API's answer.
type List struct {
	Notifications []store.Notification `json:"notifications"`
	UnreadCount   int                  `json:"unread_count"`
}

// MaxLimit is the largest page.
const MaxLimit = 100

// List returns the user's newest notifications and their unread count.
func (s *Service) List(ctx context.Context, p ListParams) (List, error) {
	if p.Limit < 1 || p.Limit > MaxLimit {
		return List{}, apperr.Validation("validation failed", map[string]string{"limit": "use a whole number from 1 to 100"})
	}
	list, n, err := s.Store.NotificationList(ctx, p.UserID, p.UnreadOnly, p.Limit)
	if err != nil {
		return List{}, err
	}
	if list == nil {
		list = []store.Notification{}
	}
	return List{Notifications: list, UnreadCount: n}, nil
}

// MarkRead marks one of the user's notifications read (another user's is
// not found).
func (s *Service) MarkRead(ctx context.Context, userID, id string) error {
	return s.Store.NotificationMarkRead(ctx, userID, id)
}

// MarkAllRead marks every unread notification of the user read and says how many.
func (s *Service) MarkAllRead(ctx context.Context, userID string) (int64, error) {
	return s.Store.NotificationMarkAllRead(ctx, userID)
}
