package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// testInference: a finished request is stored with its usage and an
// 'inference' cost record in the same transaction; each user sees only
// their own requests; deleting nothing else is needed for a base-model
// request (model_id null).
func testInference(t *testing.T, s store.Store) {
	u := NewUser(t, s, "inference@example.com")
	other := NewUser(t, s, "inference-other@example.com")
	asU := store.WithUser(context.Background(), u.ID)
	ds := NewDataset(t, s, u.ID, "chat")
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := NewModel(t, s, u.ID, ds.ID, "adapter", jobdoc.Quality{}, now)
	reason, gpu, q, first, total := "stop", "CPU", 0.01, 0.3, 1.5
	adapterReq := store.InferenceRequest{ID: uuid.NewString(), UserID: u.ID, BaseModel: "base/model", ModelID: &m.ID, Source: "v1", Status: "completed",
		FinishReason: &reason, PromptTokens: 212, CompletionTokens: 37, GPUType: &gpu, QueueSeconds: &q, FirstTokenSeconds: &first, TotalSeconds: &total,
		CreatedAt: now.Add(-2 * time.Second), FinishedAt: now}
	details := costdoc.Inference{Model: "base/model", ModelID: &m.ID, GPUType: gpu, PromptTokens: 212, CompletionTokens: 37, PricePerMillionTokens: 1000, AmountExact: 0.249, Source: "v1"}
	if err := s.InferenceRecord(sys, store.InferenceRecordParams{Request: adapterReq,
		Cost: store.InferenceCost{Amount: 0.25, Details: &details, BillingPeriod: now.Format("2006-01-02")}}); err != nil {
		t.Fatal(err)
	}
	msg := "no agent serving base/model is online"
	baseReq := store.InferenceRequest{ID: uuid.NewString(), UserID: u.ID, BaseModel: "base/model", Source: "playground", Status: "failed", Error: &msg,
		CreatedAt: now.Add(-time.Second), FinishedAt: now.Add(time.Millisecond)}
	if err := s.InferenceRecord(sys, store.InferenceRecordParams{Request: baseReq, Cost: store.InferenceCost{BillingPeriod: now.Format("2006-01-02")}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.InferenceList(asU, u.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != baseReq.ID || got[1].ID != adapterReq.ID {
		t.Fatalf("list: %+v", got)
	}
	a := got[1]
	if a.ModelID == nil || *a.ModelID != m.ID || a.PromptTokens != 212 || a.CompletionTokens != 37 || a.FinishReason == nil || *a.FinishReason != "stop" ||
		a.TotalSeconds == nil || *a.TotalSeconds != 1.5 || !a.CreatedAt.Equal(adapterReq.CreatedAt) || !a.FinishedAt.Equal(now) || a.Source != "v1" {
		t.Fatalf("adapter request: %+v", a)
	}
	if b := got[0]; b.ModelID != nil || b.Error == nil || *b.Error != msg || b.QueueSeconds != nil || b.Status != "failed" {
		t.Fatalf("base request: %+v", b)
	}
	costs, err := s.CostList(asU, u.ID, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range costs {
		if c.CostType == "inference" {
			n++
		}
		// The adapter request's details come back as written; the failed one has none.
		if c.Amount == 0.25 && (c.Details.Inference == nil || !reflect.DeepEqual(*c.Details.Inference, details)) {
			t.Fatalf("inference cost details: %+v", c.Details.Inference)
		}
		if c.Amount == 0 && c.Details.Type() != "" {
			t.Fatalf("a request without details got %+v", c.Details)
		}
	}
	if n != 2 {
		t.Fatalf("want 2 inference cost records, got %+v", costs)
	}
	asOther := store.WithUser(context.Background(), other.ID)
	if l, err := s.InferenceList(asOther, other.ID, 10); err != nil || len(l) != 0 {
		t.Fatalf("other user sees %d requests (%v)", len(l), err)
	}
	// Querying for someone else (a forgotten filter would be caught by RLS on PostgreSQL).
	if l, err := s.InferenceList(asOther, u.ID, 10); err == nil && len(l) != 0 && s.Engine() == "postgres" {
		t.Fatalf("RLS let another user read %d requests", len(l))
	}
	// Bad input from a buggy caller is refused by the schema, not stored.
	bad := adapterReq
	bad.ID, bad.Source = uuid.NewString(), "elsewhere"
	if err := s.InferenceRecord(sys, store.InferenceRecordParams{Request: bad, Cost: store.InferenceCost{BillingPeriod: now.Format("2006-01-02")}}); err == nil {
		t.Fatal("a source outside v1/playground was stored")
	}
}

// testPreferences: preferences are stored per user and model, listed oldest
// first, and invisible to other users.
func testPreferences(t *testing.T, s store.Store) {
	u := NewUser(t, s, "prefs@example.com")
	other := NewUser(t, s, "prefs-other@example.com")
	asU := store.WithUser(context.Background(), u.ID)
	ds := NewDataset(t, s, u.ID, "chat")
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := NewModel(t, s, u.ID, ds.ID, "adapter", jobdoc.Quality{}, now)
	msgs := []jobdoc.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi 'there'; --"}}
	for i, choice := range []string{"left", "tie"} {
		if err := s.PreferenceCreate(asU, store.Preference{ID: uuid.NewString(), UserID: u.ID, ModelID: m.ID, Messages: msgs, LeftSide: "adapter",
			LeftText: "Hello!", RightText: "Hm.", Choice: choice, CreatedAt: now.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PreferenceList(asU, u.ID, m.ID)
	if err != nil || len(got) != 2 || got[0].Choice != "left" || got[1].Choice != "tie" || got[0].LeftText != "Hello!" || !got[0].CreatedAt.Equal(now) {
		t.Fatalf("list: %v %+v", err, got)
	}
	if !reflect.DeepEqual(got[0].Messages, msgs) {
		t.Fatalf("messages: %+v", got[0].Messages)
	}
	if l, err := s.PreferenceList(store.WithUser(context.Background(), other.ID), other.ID, m.ID); err != nil || len(l) != 0 {
		t.Fatalf("other user: %v %d", err, len(l))
	}
	if err := s.PreferenceCreate(asU, store.Preference{ID: uuid.NewString(), UserID: u.ID, ModelID: m.ID, Messages: msgs, LeftSide: "adapter",
		Choice: "both", CreatedAt: now}); err == nil {
		t.Fatal("a choice outside left/right/tie was stored")
	}
}
