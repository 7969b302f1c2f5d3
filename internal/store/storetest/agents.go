package storetest

import (
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
)

// testAgentsAndOperators: the first account alone becomes an operator when
// asked "if none"; agents list with their current job and jobs finished;
// revoking hides them; a queued job knows its place per GPU type.
func testAgentsAndOperators(t *testing.T, s store.Store) {
	now := time.Now().UTC()
	first, err := s.UserCreate(sys, store.UserCreateParams{At: now, Email: "first@example.com", PasswordHash: "x", Operator: store.OperatorIfNone})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.UserCreate(sys, store.UserCreateParams{At: now, Email: "second@example.com", PasswordHash: "x", Operator: store.OperatorIfNone})
	if err != nil {
		t.Fatal(err)
	}
	third, err := s.UserCreate(sys, store.UserCreateParams{At: now, Email: "third@example.com", PasswordHash: "x", Operator: store.OperatorAlways})
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{first.ID: true, second.ID: false, third.ID: true} {
		if got, err := s.OperatorIs(sys, u); err != nil || got != want {
			t.Fatalf("operator %s: %v %v, want %v", u, got, err, want)
		}
	}
	if err := s.OperatorGrant(sys, second.ID, now); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.OperatorIs(sys, second.ID); !ok {
		t.Fatal("granted operator not seen")
	}

	d := NewDataset(t, s, first.ID, "agents")
	j1 := NewJob(t, s, first.ID, d.ID, "G-1")
	j2 := NewJob(t, s, first.ID, d.ID, "G-1")
	j3 := NewJob(t, s, first.ID, d.ID, "G-2")
	// j1 and j2 may share a millisecond: claim order is (queued_at, id).
	p1, err1 := s.JobQueuePosition(sys, j1.ID)
	p2, err2 := s.JobQueuePosition(sys, j2.ID)
	p3, err3 := s.JobQueuePosition(sys, j3.ID)
	if err1 != nil || err2 != nil || err3 != nil || p1+p2 != 3 || p1*p2 != 2 || p3 != 1 {
		t.Fatalf("queue positions %d %d %d (%v %v %v)", p1, p2, p3, err1, err2, err3)
	}
	next, later := j1, j2
	if p2 == 1 {
		next, later = j2, j1
	}
	a, err := s.AgentCreate(sys, "box", "hash-box", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AgentSeen(sys, a.ID, AgentGPUs("G-1", 2), "1.0", "box.lan", now); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: a.ID, GPUType: "G-1", GPUCount: 2, TokenHash: hashFor, Now: now, Lease: time.Minute, Decide: claimEffects()}); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if pos, _ := s.JobQueuePosition(sys, later.ID); pos != 1 {
		t.Fatalf("after the first was claimed the second is at %d", pos)
	}
	if pos, _ := s.JobQueuePosition(sys, next.ID); pos != 0 {
		t.Fatalf("a claimed job has queue position %d", pos)
	}
	list, err := s.AgentList(sys)
	if err != nil || len(list) != 1 {
		t.Fatalf("agents: %+v %v", list, err)
	}
	got := list[0]
	if got.Name != "box" || got.Version != "1.0" || got.LastSeenAt == nil || got.CurrentJobID == nil || *got.CurrentJobID != next.ID ||
		got.CurrentJobStatus != store.JobInitializing || got.CurrentJobLease == nil || got.JobsRun != 0 {
		t.Fatalf("agent row: %+v", got)
	}
	if err := s.AgentRevoke(sys, a.ID, now); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.AgentList(sys); len(list) != 0 {
		t.Fatalf("a revoked agent is listed: %+v", list)
	}
	if err := s.AgentRevoke(sys, a.ID, now); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
}

// AgentGPUs are an agent's declared capabilities: count GPUs of gpuType.
func AgentGPUs(gpuType string, count int) jobdoc.Capabilities {
	return jobdoc.Capabilities{GPUType: gpuType, GPUCount: &count}
}
