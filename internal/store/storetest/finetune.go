package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/google/uuid"
)

// testFineTune: /v1 fine-tuning job rows are the owner's only, page newest
// first with an after cursor, move on from validating_files exactly once,
// and are found by their training job.
func testFineTune(t *testing.T, s store.Store) {
	u := NewUser(t, s, "ft@example.com")
	other := NewUser(t, s, "ft-other@example.com")
	uctx := store.WithUser(context.Background(), u.ID)
	d := NewDataset(t, s, u.ID, "ft data")
	at := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	plan := jobdoc.FineTunePlan{PresetID: "balanced", GPUType: "H100-80GB", NEpochs: 1, BatchSize: 4, LearningRateMultiplier: 2, BatchAuto: true,
		Hyper: catalog.Hyperparameters{BaseModel: "m", NumEpochs: 1, LearningRate: 2e-4, BatchSize: 4, LoraRank: 16, LoraAlpha: 32, TargetModules: []string{"q_proj", "v_proj"}}}
	var ids []string
	for i := range 5 {
		f, err := s.FineTuneCreate(uctx, store.FineTuneJob{ID: uuid.NewString(), UserID: u.ID, Model: "m", TrainingFile: d.ID, Seed: 42,
			Metadata: map[string]string{"i": string(rune('a' + i))}, Request: plan, Status: store.FineTuneValidatingFiles, CreatedAt: at.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	got, err := s.FineTuneGet(uctx, u.ID, ids[0])
	if err != nil || got.Metadata["i"] != "a" || got.Seed != 42 || got.Status != store.FineTuneValidatingFiles || !got.CreatedAt.Equal(at) || !reflect.DeepEqual(got.Request, plan) {
		t.Fatalf("get: %v %+v", err, got)
	}
	if _, err := s.FineTuneGet(store.WithUser(context.Background(), other.ID), other.ID, ids[0]); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("another user's row: %v", err)
	}
	page, err := s.FineTuneList(uctx, store.FineTuneListParams{UserID: u.ID, Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] {
		t.Fatalf("page 1: %v %d", err, len(page))
	}
	page, err = s.FineTuneList(uctx, store.FineTuneListParams{UserID: u.ID, After: page[1].ID, Limit: 10})
	if err != nil || len(page) != 3 || page[0].ID != ids[2] || page[2].ID != ids[0] {
		t.Fatalf("page 2: %v %d", err, len(page))
	}
	if l, err := s.FineTuneList(store.WithUser(context.Background(), other.ID), store.FineTuneListParams{UserID: other.ID, Limit: 10}); err != nil || len(l) != 0 {
		t.Fatalf("another user's list: %v %d", err, len(l))
	}
	pending, err := s.FineTunePending(sys, 10)
	if err != nil || len(pending) != 5 {
		t.Fatalf("pending: %v %d", err, len(pending))
	}
	j := NewJob(t, s, u.ID, d.ID, "CPU-FT")
	ok, err := s.FineTuneResolve(sys, store.FineTuneResolve{ID: ids[0], Status: store.FineTuneCreated, JobID: &j.ID, At: at.Add(time.Minute)})
	if err != nil || !ok {
		t.Fatalf("resolve: %v %v", err, ok)
	}
	if ok, err := s.FineTuneResolve(sys, store.FineTuneResolve{ID: ids[0], Status: store.FineTuneFailed, ErrorCode: "x", At: at.Add(time.Minute)}); err != nil || ok {
		t.Fatalf("resolved twice: %v %v", err, ok)
	}
	if f, err := s.FineTuneByJob(uctx, u.ID, j.ID); err != nil || f.ID != ids[0] || f.Status != store.FineTuneCreated || f.FinishedAt != nil {
		t.Fatalf("by job: %v %+v", err, f)
	}
	if _, err := s.FineTuneResolve(sys, store.FineTuneResolve{ID: ids[1], Status: store.FineTuneFailed, ErrorCode: "invalid_training_file",
		ErrorMessage: "line 3: bad", Param: "training_file", At: at.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	f, _ := s.FineTuneGet(uctx, u.ID, ids[1])
	if f.Status != store.FineTuneFailed || f.ErrorCode == nil || *f.ErrorMessage != "line 3: bad" || *f.ErrorParam != "training_file" || f.FinishedAt == nil {
		t.Fatalf("failed row: %+v", f)
	}
	if pending, _ := s.FineTunePending(sys, 10); len(pending) != 3 {
		t.Fatalf("pending after resolving two: %d", len(pending))
	}
}
