package storetest

import (
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
)

func testDeliveries(t *testing.T, s store.Store) {
	a := NewUser(t, s, "hooks-a@example.com")
	b := NewUser(t, s, "hooks-b@example.com")
	ua := store.WithUser(sys, a.ID)
	ub := store.WithUser(sys, b.ID)
	if c, err := s.ChannelsGet(ua, a.ID); err != nil || c.WebhookURL != "" || c.EmailEnabled {
		t.Fatalf("empty channels: %+v %v", c, err)
	}
	// A notification from before the channels were set is never sent.
	if _, err := s.NotificationCreate(sys, store.NotificationCreateParams{At: time.Now().UTC(), UserID: a.ID, Type: "job_started", Title: "old", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	c, err := s.ChannelsPut(ua, store.NotificationChannels{UpdatedAt: time.Now().UTC(), UserID: a.ID, WebhookURL: "https://hooks.example.com/x", WebhookSecret: "whsec_1", EmailEnabled: true, EmailAddress: "a@example.com"})
	if err != nil || c.WebhookSecret != "whsec_1" || !c.EmailEnabled || c.UpdatedAt.IsZero() {
		t.Fatalf("put: %+v %v", c, err)
	}
	// On PostgreSQL, RLS hides A's row from B even when asked by A's id.
	if cb, err := s.ChannelsGet(ub, a.ID); s.Engine() == "postgres" && (err != nil || cb.WebhookSecret != "") {
		t.Fatalf("B reads A's channels: %+v %v", cb, err)
	}
	time.Sleep(5 * time.Millisecond)
	n, err := s.NotificationCreate(sys, store.NotificationCreateParams{At: time.Now().UTC(), UserID: a.ID, Type: "job_completed", Title: "new", Message: "m", ActionURL: "/x", Metadata: notifydoc.Job("job-1")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if k, err := s.DeliveriesEnqueue(sys, now); err != nil || k != 2 {
		t.Fatalf("enqueue: %d %v", k, err)
	}
	if k, err := s.DeliveriesEnqueue(sys, now); err != nil || k != 0 {
		t.Fatalf("enqueue twice: %d %v", k, err)
	}
	due, err := s.DeliveriesDue(sys, now, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %d %v", len(due), err)
	}
	var hook store.DueDelivery
	for _, d := range due {
		if d.NotificationID != n.ID || d.Notification.Title != "new" || d.Status != "pending" {
			t.Fatalf("due row: %+v", d)
		}
		if d.Channel == "webhook" {
			hook = d
		}
	}
	if hook.WebhookSecret != "whsec_1" || hook.Target != "https://hooks.example.com/x" || hook.Notification.ActionURL == nil || hook.Notification.Metadata == nil || hook.Notification.Metadata.JobID != "job-1" {
		t.Fatalf("webhook due: %+v", hook)
	}
	if again, _ := s.DeliveriesDue(sys, now, 10); len(again) != 0 {
		t.Fatalf("leased deliveries returned again: %d", len(again))
	}
	next := now.Add(10 * time.Second)
	if err := s.DeliveryResult(sys, hook.ID, false, 500, "HTTP 500", &next, now); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.DeliveriesDue(sys, next, 10); len(d) != 1 || d[0].Attempts != 1 || d[0].LastError != "HTTP 500" {
		t.Fatalf("rescheduled: %+v", d)
	}
	if err := s.DeliveryResult(sys, hook.ID, true, 204, "", nil, next); err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		if d.Channel == "email" {
			if err := s.DeliveryResult(sys, d.ID, false, 0, "refused", nil, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	log, err := s.DeliveriesList(ua, a.ID, 10)
	if err != nil || len(log) != 2 {
		t.Fatalf("list: %d %v", len(log), err)
	}
	for _, d := range log {
		switch d.Channel {
		case "webhook":
			if d.Status != "delivered" || d.Attempts != 2 || d.ResponseCode == nil || *d.ResponseCode != 204 || d.DeliveredAt == nil || d.Title != "new" {
				t.Fatalf("webhook log: %+v", d)
			}
		case "email":
			if d.Status != "failed" || d.Attempts != 1 || d.LastError != "refused" {
				t.Fatalf("email log: %+v", d)
			}
		}
	}
	if lb, err := s.DeliveriesList(ub, a.ID, 10); s.Engine() == "postgres" && (err != nil || len(lb) != 0) {
		t.Fatalf("B lists A's deliveries: %d %v", len(lb), err)
	}
	if d, _ := s.DeliveriesDue(sys, now.Add(time.Hour), 10); len(d) != 0 {
		t.Fatalf("finished deliveries still due: %d", len(d))
	}
}
