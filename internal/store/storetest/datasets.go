package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// NewDataset creates a dataset for tests.
func NewDataset(t testing.TB, s store.Store, userID, name string) store.Dataset {
	t.Helper()
	id := uuid.NewString()
	d, err := s.DatasetCreate(store.WithUser(context.Background(), userID), store.DatasetCreateParams{At: time.Now().UTC(), ID: id, UserID: userID, Name: name,
		Format: "brightrun_lora_v4", StoragePath: userID + "/" + id + "/data.json", FileName: "data.json", FileSize: 123})
	if err != nil {
		t.Fatalf("create dataset: %v", err)
	}
	return d
}

func testDatasets(t *testing.T, s store.Store) {
	a := NewUser(t, s, "da@example.com")
	b := NewUser(t, s, "db@example.com")
	asA := store.WithUser(context.Background(), a.ID)
	asB := store.WithUser(context.Background(), b.ID)
	d := NewDataset(t, s, a.ID, "Support chats")
	if d.Status != store.DatasetUploading || d.StorageBucket != "lora-datasets" || d.TrainingReady {
		t.Fatalf("new dataset: %+v", d)
	}
	for i := 0; i < 5; i++ {
		NewDataset(t, s, a.ID, fmt.Sprintf("batch_%d%%", i))
	}
	if _, err := s.DatasetGet(asB, b.ID, d.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("B reading A's dataset: %v", err)
	}
	if _, err := s.DatasetGet(asA, b.ID, d.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("owner filter must apply: %v", err)
	}
	list, total, err := s.DatasetList(asA, store.DatasetListParams{UserID: a.ID, Page: 2, Limit: 4})
	if err != nil || total != 6 || len(list) != 2 {
		t.Fatalf("page 2: total %d len %d err %v", total, len(list), err)
	}
	list, total, _ = s.DatasetList(asA, store.DatasetListParams{UserID: a.ID, Search: "SUPPORT", Page: 1, Limit: 10})
	if total != 1 || list[0].ID != d.ID {
		t.Fatalf("search: %d", total)
	}
	_, total, _ = s.DatasetList(asA, store.DatasetListParams{UserID: a.ID, Search: "%", Page: 1, Limit: 10})
	if total != 5 {
		t.Fatalf("%% must match literally: %d", total)
	}
	_, total, _ = s.DatasetList(asB, store.DatasetListParams{UserID: b.ID, Page: 1, Limit: 10})
	if total != 0 {
		t.Fatalf("B lists %d", total)
	}
	name := "Renamed"
	if u, err := s.DatasetUpdate(asA, a.ID, d.ID, store.DatasetPatch{Name: &name, At: time.Now().UTC()}); err != nil || u.Name != name {
		t.Fatalf("update: %v %+v", err, u)
	}
	if _, err := s.DatasetUpdate(asB, b.ID, d.ID, store.DatasetPatch{Name: &name, At: time.Now().UTC()}); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("B updating: %v", err)
	}

	// Validation lifecycle.
	sys := store.AsSystem(context.Background())
	now := time.Now().UTC()
	if _, ok, _ := s.DatasetClaimValidation(sys, now, time.Minute); ok {
		t.Fatal("nothing is validating yet")
	}
	if v, err := s.DatasetStartValidation(asA, a.ID, d.ID, time.Now().UTC()); err != nil || v.Status != store.DatasetValidating {
		t.Fatalf("start: %v %+v", err, v)
	}
	if _, err := s.DatasetStartValidation(asA, a.ID, d.ID, time.Now().UTC()); err != nil {
		t.Fatalf("confirm twice: %v", err)
	}
	c, ok, err := s.DatasetClaimValidation(sys, now, time.Minute)
	if err != nil || !ok || c.ID != d.ID || c.ValidationAttempts != 1 {
		t.Fatalf("claim: %v %v %+v", err, ok, c)
	}
	if _, ok, _ := s.DatasetClaimValidation(sys, now, time.Minute); ok {
		t.Fatal("a leased dataset must not be claimed twice")
	}
	// After a crash the lease expires and another worker picks it up.
	c, ok, _ = s.DatasetClaimValidation(sys, now.Add(2*time.Minute), time.Minute)
	if !ok || c.ValidationAttempts != 2 {
		t.Fatalf("reclaim after lease expiry: %v %+v", ok, c)
	}
	warns := []validate.Issue{{Line: 3, Field: "conversations[0].training_pairs[1]", Code: "duplicate_pair", Error: "a repeated pair", Severity: validate.SeverityWarning, Count: 2}}
	sample := []validate.Example{{ConversationKey: "c1", Messages: []validate.Message{{Role: "user", Content: "Hi 'there'; --"}}, Split: "training"}}
	prof := validate.TokenProfile{Examples: 2, Rows: [][4]int32{{10, 4, 3, 0}, {900, 300, 200, 1}}}
	saved, err := s.DatasetSaveValidation(sys, d.ID, store.DatasetValidation{Status: store.DatasetReady, Format: "brightrun_lora_v4_jsonl", TrainingReady: true,
		TotalTrainingPairs: 40, TotalValidationPairs: 4, TotalTokens: 12345, AvgTurns: 7.5, AvgTokensPerTurn: 88.25,
		Errors: []validate.Issue{}, Warnings: warns, Statistics: validate.Stats{Conversations: 12, PersonaDistribution: map[string]int{"anxious": 3}},
		Sample: sample, TokenProfile: prof, At: now})
	if err != nil || !saved {
		t.Fatalf("save: %v %v", saved, err)
	}
	got, _ := s.DatasetGet(asA, a.ID, d.ID)
	if got.Status != store.DatasetReady || !got.TrainingReady || *got.TotalTrainingPairs != 40 || *got.TotalTokens != 12345 ||
		*got.AvgTokensPerTurn != 88.25 || got.Statistics == nil || got.ValidatedAt == nil || got.Format != "brightrun_lora_v4_jsonl" {
		t.Fatalf("after save: %+v", got)
	}
	if st := got.Statistics; st.Conversations != 12 || st.PersonaDistribution["anxious"] != 3 {
		t.Fatalf("statistics: %+v", st)
	}
	if got.ValidationErrors == nil || len(got.ValidationErrors) != 0 || !reflect.DeepEqual(got.ValidationWarnings, warns) || !reflect.DeepEqual(got.SampleData, sample) {
		t.Fatalf("issues and sample: %+v %+v %+v", got.ValidationErrors, got.ValidationWarnings, got.SampleData)
	}
	// The token profile: the owner reads it, another user does not.
	if p, err := s.DatasetTokenProfile(asA, a.ID, d.ID); err != nil || p == nil || !reflect.DeepEqual(*p, prof) {
		t.Fatalf("token profile: %+v %v", p, err)
	}
	if _, err := s.DatasetTokenProfile(asB, b.ID, d.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("B reading A's token profile: %v", err)
	}
	if saved, _ := s.DatasetSaveValidation(sys, d.ID, store.DatasetValidation{Status: store.DatasetError, At: now}); saved {
		t.Fatal("a finished validation must not be overwritten")
	}

	// Soft delete: invisible afterwards, object deletion pending until marked.
	if _, err := s.DatasetSoftDelete(asB, b.ID, d.ID, now); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("B deleting: %v", err)
	}
	if _, err := s.DatasetSoftDelete(asA, a.ID, d.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DatasetGet(asA, a.ID, d.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("deleted dataset visible: %v", err)
	}
	pend, err := s.DatasetPendingObjectDeletes(sys, 10)
	if err != nil || len(pend) != 1 || pend[0].ID != d.ID {
		t.Fatalf("pending deletes: %v %d", err, len(pend))
	}
	if err := s.DatasetMarkObjectDeleted(sys, d.ID, now); err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.DatasetPendingObjectDeletes(sys, 10); len(pend) != 0 {
		t.Fatal("object still pending after mark")
	}
}

func testNotifications(t *testing.T, s store.Store) {
	a := NewUser(t, s, "na@example.com")
	b := NewUser(t, s, "nb@example.com")
	sys := store.AsSystem(context.Background())
	asA := store.WithUser(context.Background(), a.ID)
	asB := store.WithUser(context.Background(), b.ID)
	var ids []string
	for i := 0; i < 3; i++ {
		n, err := s.NotificationCreate(sys, store.NotificationCreateParams{At: time.Now().UTC(), UserID: a.ID, Type: "dataset_ready", Title: "t", Message: "m", ActionURL: "/datasets/x", Metadata: notifydoc.Dataset("x", i, 0)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	list, unread, err := s.NotificationList(asA, a.ID, false, 2)
	if err != nil || unread != 3 || len(list) != 2 || list[0].Priority != "medium" || list[0].ActionURL == nil {
		t.Fatalf("list: %v %d %+v", err, unread, list)
	}
	// The metadata comes back typed, a zero count kept (not omitted).
	for _, n := range list {
		if m := n.Metadata; m == nil || m.DatasetID != "x" || m.Errors == nil || m.Warnings == nil || *m.Warnings != 0 || m.JobID != "" {
			t.Fatalf("metadata: %+v", m)
		}
	}
	if _, unread, _ := s.NotificationList(asB, b.ID, false, 10); unread != 0 {
		t.Fatal("B sees A's notifications")
	}
	if err := s.NotificationMarkRead(asB, b.ID, ids[0]); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("B marking A's: %v", err)
	}
	if err := s.NotificationMarkRead(asA, a.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	list, unread, _ = s.NotificationList(asA, a.ID, true, 10)
	if unread != 2 || len(list) != 2 {
		t.Fatalf("after read: %d %d", unread, len(list))
	}
	if n, err := s.NotificationMarkAllRead(asA, a.ID); err != nil || n != 2 {
		t.Fatalf("read all: %d %v", n, err)
	}
}
