package storetest

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// testAgentWork: preflight work is queued once per (dataset, model) while
// open, claimed by one agent only for a model it declares, given back when
// its lease expires, completed only by its agent (storing the profile the
// owner, and nobody else, reads), and not queued again once a profile exists
// or soon after a failure.
func testAgentWork(t *testing.T, s store.Store) {
	u := NewUser(t, s, "work@example.com")
	other := NewUser(t, s, "other-work@example.com")
	d := NewDataset(t, s, u.ID, "work data")
	now := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	const model = "org/model-a"
	enq := func(at time.Time, ds string) (store.AgentWork, bool) {
		t.Helper()
		w, ok, err := s.AgentWorkEnqueue(sys, store.AgentWorkEnqueueParams{ID: uuid.NewString(), Kind: store.WorkPreflight, UserID: u.ID, DatasetID: ds,
			BaseModel: model, RetryFailedAfter: at.Add(-time.Hour), At: at})
		if err != nil {
			t.Fatal(err)
		}
		return w, ok
	}
	w, ok := enq(now, d.ID)
	if !ok || w.Status != store.WorkQueued {
		t.Fatalf("enqueue: %v %+v", ok, w)
	}
	if again, ok := enq(now.Add(time.Second), d.ID); !ok || again.ID != w.ID {
		t.Fatalf("a second enqueue of an open pair must return the same work: %+v", again)
	}
	a1, err := s.AgentCreate(sys, "w1", "work-hash-1", now)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.AgentCreate(sys, "w2", "work-hash-2", now)
	if err != nil {
		t.Fatal(err)
	}
	claim := func(agent string, models []string, at time.Time) (store.AgentWork, bool) {
		t.Helper()
		c, ok, err := s.AgentWorkClaim(sys, store.AgentWorkClaimParams{AgentID: agent, Kinds: []string{store.WorkPreflight}, BaseModels: models,
			Lease: time.Minute, MaxAttempts: 2, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return c, ok
	}
	if _, ok := claim(a1.ID, []string{"org/other-model"}, now); ok {
		t.Fatal("an agent without the model must not claim its preflight")
	}
	c, ok := claim(a1.ID, []string{model}, now)
	if !ok || c.ID != w.ID || c.Status != store.WorkRunning || c.AgentID != a1.ID || c.Attempts != 1 {
		t.Fatalf("claim: %v %+v", ok, c)
	}
	if _, ok := claim(a2.ID, nil, now.Add(30*time.Second)); ok {
		t.Fatal("work held under a live lease was claimed twice")
	}
	// The lease expires: another agent gets it, and the first can no longer finish it.
	c2, ok := claim(a2.ID, nil, now.Add(2*time.Minute))
	if !ok || c2.ID != w.ID || c2.AgentID != a2.ID || c2.Attempts != 2 {
		t.Fatalf("claim after the lease expired: %v %+v", ok, c2)
	}
	prof := validate.TokenProfile{Examples: 2, Rows: [][4]int32{{10, 4, 3, 0}, {900, 300, 200, 1}}}
	if err := s.AgentWorkComplete(sys, store.AgentWorkCompleteParams{ID: w.ID, AgentID: a1.ID, Profile: prof, At: now.Add(3 * time.Minute)}); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("the superseded agent completing: %v", err)
	}
	if _, err := s.AgentWorkGet(sys, w.ID, a2.ID); err != nil {
		t.Fatalf("get by its agent: %v", err)
	}
	asU, asO := store.WithUser(context.Background(), u.ID), store.WithUser(context.Background(), other.ID)
	if p, err := s.DatasetModelProfile(asU, u.ID, d.ID, model); err != nil || p != nil {
		t.Fatalf("profile before completion: %+v %v", p, err)
	}
	if err := s.AgentWorkComplete(sys, store.AgentWorkCompleteParams{ID: w.ID, AgentID: a2.ID, Profile: prof, At: now.Add(3 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.DatasetModelProfile(asU, u.ID, d.ID, model); err != nil || p == nil || !reflect.DeepEqual(*p, prof) {
		t.Fatalf("profile: %+v %v", p, err)
	}
	if p, err := s.DatasetModelProfile(asO, other.ID, d.ID, model); err != nil || p != nil {
		t.Fatalf("another user read the profile: %+v %v", p, err)
	}
	if p, err := s.DatasetModelProfile(asO, u.ID, d.ID, model); s.Engine() == "postgres" && p != nil {
		t.Fatalf("another user's session read the profile by naming its owner (RLS on PostgreSQL): %+v %v", p, err)
	}
	if _, err := s.AgentWorkGet(sys, w.ID, a2.ID); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("completed work is not running: %v", err)
	}
	if _, ok := enq(now.Add(4*time.Minute), d.ID); ok {
		t.Fatal("a pair with a profile must not be queued again")
	}
	if l, ok, err := s.AgentWorkLatest(asU, u.ID, store.WorkPreflight, d.ID, model); err != nil || !ok || l.Status != store.WorkCompleted {
		t.Fatalf("latest: %v %v %+v", ok, err, l)
	}

	// Enqueued at once from several requests (replicas): one open item.
	d3 := NewDataset(t, s, u.ID, "work data 3")
	ids := make(chan string, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, ok, err := s.AgentWorkEnqueue(sys, store.AgentWorkEnqueueParams{ID: uuid.NewString(), Kind: store.WorkPreflight, UserID: u.ID, DatasetID: d3.ID,
				BaseModel: "org/model-b", RetryFailedAfter: now.Add(-time.Hour), At: now})
			if err != nil || !ok {
				t.Errorf("concurrent enqueue: %v %v", ok, err)
			}
			ids <- w.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("concurrent enqueues made %d open items for one pair: %v", len(seen), seen)
	}

	// A failure: not queued again within the retry window, queued after it.
	d2 := NewDataset(t, s, u.ID, "work data 2")
	w2, _ := enq(now, d2.ID)
	if c, ok := claim(a1.ID, []string{model}, now); !ok || c.ID != w2.ID {
		t.Fatalf("claim second: %v %+v", ok, c)
	}
	if err := s.AgentWorkFail(sys, store.AgentWorkFailParams{ID: w2.ID, AgentID: a2.ID, Error: "x", At: now}); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("failing another agent's work: %v", err)
	}
	if err := s.AgentWorkFail(sys, store.AgentWorkFailParams{ID: w2.ID, AgentID: a1.ID, Error: "no tokenizer", At: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if l, ok, _ := s.AgentWorkLatest(asU, u.ID, store.WorkPreflight, d2.ID, model); !ok || l.Status != store.WorkFailed || l.Error != "no tokenizer" {
		t.Fatalf("failed work: %+v", l)
	}
	if _, ok := enq(now.Add(time.Minute), d2.ID); ok {
		t.Fatal("queued again right after a failure")
	}
	if w3, ok := enq(now.Add(2*time.Hour), d2.ID); !ok || w3.ID == w2.ID {
		t.Fatalf("not queued again after the retry window: %v %+v", ok, w3)
	}
	// Lease expired on every attempt: failed for good, the pair is free.
	c3, _ := claim(a1.ID, []string{model}, now.Add(2*time.Hour))
	claim(a2.ID, []string{model}, now.Add(2*time.Hour+2*time.Minute))
	if _, ok := claim(a1.ID, []string{model}, now.Add(2*time.Hour+4*time.Minute)); ok {
		t.Fatal("claimed past MaxAttempts")
	}
	if l, _, _ := s.AgentWorkLatest(asU, u.ID, store.WorkPreflight, d2.ID, model); l.ID != c3.ID || l.Status != store.WorkFailed || l.Error == "" {
		t.Fatalf("work whose lease expired on every attempt: %+v", l)
	}
}
