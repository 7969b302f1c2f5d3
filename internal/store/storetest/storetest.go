// Package storetest is the one store test suite; store engines run it.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// Run runs every store test against s.
func Run(t *testing.T, open func(t testing.TB) store.Store) {
	t.Run("NoActorFailsClosed", func(t *testing.T) { testNoActor(t, open(t)) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("APITokens", func(t *testing.T) { testTokens(t, open(t)) })
	t.Run("LoginThrottle", func(t *testing.T) { testThrottle(t, open(t)) })
	t.Run("SQLMetacharacters", func(t *testing.T) { testMeta(t, open(t)) })
	t.Run("Datasets", func(t *testing.T) { testDatasets(t, open(t)) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, open(t)) })
	t.Run("Execution", func(t *testing.T) { testExecution(t, open(t)) })
	t.Run("Deliveries", func(t *testing.T) { testDeliveries(t, open(t)) })
	t.Run("StorageUsageDuring", func(t *testing.T) { testStorageUsageDuring(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, open(t)) })
	t.Run("Inference", func(t *testing.T) { testInference(t, open(t)) })
	t.Run("Preferences", func(t *testing.T) { testPreferences(t, open(t)) })
	t.Run("FineTune", func(t *testing.T) { testFineTune(t, open(t)) })
	t.Run("Launches", func(t *testing.T) { testLaunches(t, open(t)) })
	t.Run("ModelsByQualityAcrossPages", func(t *testing.T) { testModelsByQuality(t, open(t)) })
	t.Run("AgentsAndOperators", func(t *testing.T) { testAgentsAndOperators(t, open(t)) })
	t.Run("AgentWork", func(t *testing.T) { testAgentWork(t, open(t)) })
	t.Run("ModelExports", func(t *testing.T) { testModelExports(t, open(t)) })
}

var sys = store.AsSystem(context.Background())

// NewUser creates a user for tests.
func NewUser(t testing.TB, s store.Store, email string) store.User {
	t.Helper()
	u, err := s.UserCreate(sys, store.UserCreateParams{At: time.Now().UTC(), Email: email, PasswordHash: "x"})
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

func testNoActor(t *testing.T, s store.Store) {
	if _, err := s.UserGetByEmail(context.Background(), "a@example.com"); err != store.ErrNoActor {
		t.Fatalf("want ErrNoActor without an actor, got %v", err)
	}
}

func testUsers(t *testing.T, s store.Store) {
	u := NewUser(t, s, " Alice@Example.com ")
	if u.Email != "alice@example.com" {
		t.Fatalf("email not normalised: %q", u.Email)
	}
	got, err := s.UserGetByEmail(sys, "ALICE@example.com")
	if err != nil || got.ID != u.ID {
		t.Fatalf("get by email: %v %+v", err, got)
	}
	if _, err := s.UserCreate(sys, store.UserCreateParams{At: time.Now().UTC(), Email: "alice@example.com", PasswordHash: "y"}); !apperr.Is(err, apperr.KindConflict) {
		t.Fatalf("duplicate email: want conflict, got %v", err)
	}
	if h, err := s.AccountPasswordHash(sys, u.ID); err != nil || h != "x" {
		t.Fatalf("password hash: %q %v", h, err)
	}
	if _, err := s.UserGet(sys, "not-a-uuid"); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("bad id: want not found, got %v", err)
	}
	id := "7b0e2c8e-5b1f-4a55-9d53-2f1f6f0a9c11"
	e, err := s.UserEnsure(sys, id, "sb@example.com", time.Now().UTC())
	if err != nil || e.ID != id {
		t.Fatalf("ensure: %v %+v", err, e)
	}
	if e2, err := s.UserEnsure(sys, id, "sb@example.com", time.Now().UTC()); err != nil || e2.ID != id {
		t.Fatalf("ensure twice: %v", err)
	}
}

func testSessions(t *testing.T, s store.Store) {
	u := NewUser(t, s, "s@example.com")
	now := time.Now().UTC().Truncate(time.Millisecond)
	se := store.Session{ID: "hash1", UserID: u.ID, CSRFToken: "csrf", UserAgent: "ua", IP: "127.0.0.1",
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.SessionCreate(sys, se); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionGet(sys, "hash1")
	if err != nil || got.UserID != u.ID || !got.ExpiresAt.Equal(se.ExpiresAt) || got.CSRFToken != "csrf" {
		t.Fatalf("session round trip: %v %+v", err, got)
	}
	if err := s.SessionTouch(sys, "hash1", now, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SessionDeleteExpired(sys, now.Add(90*time.Minute)); err != nil || n != 0 {
		t.Fatalf("touched session must survive: n=%d err=%v", n, err)
	}
	if n, err := s.SessionDeleteExpired(sys, now.Add(3*time.Hour)); err != nil || n != 1 {
		t.Fatalf("expired session must go: n=%d err=%v", n, err)
	}
	if _, err := s.SessionGet(sys, "hash1"); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("want not found, got %v", err)
	}
}

func testTokens(t *testing.T, s store.Store) {
	a := NewUser(t, s, "a@example.com")
	b := NewUser(t, s, "b@example.com")
	tok, err := s.APITokenCreate(sys, store.APITokenCreateParams{At: time.Now().UTC(), UserID: a.ID, Name: "ci", Hash: "h1", Prefix: "br_abc"})
	if err != nil {
		t.Fatal(err)
	}
	asA := store.WithUser(context.Background(), a.ID)
	asB := store.WithUser(context.Background(), b.ID)
	if list, err := s.APITokenList(asA, a.ID); err != nil || len(list) != 1 || list[0].Name != "ci" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if list, err := s.APITokenList(asB, b.ID); err != nil || len(list) != 0 {
		t.Fatalf("B must see no tokens: %v %+v", err, list)
	}
	if err := s.APITokenRevoke(asB, b.ID, tok.ID, time.Now()); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("B revoking A's token: want not found, got %v", err)
	}
	if err := s.APITokenTouch(sys, tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.APITokenRevoke(asA, a.ID, tok.ID, time.Now()); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	got, err := s.APITokenGetByHash(sys, "h1")
	if err != nil || got.RevokedAt == nil || got.LastUsedAt == nil {
		t.Fatalf("after revoke: %v %+v", err, got)
	}
}

func testThrottle(t *testing.T, s store.Store) {
	got, err := s.LoginThrottleGet(sys, "k")
	if err != nil || got.Failures != 0 {
		t.Fatalf("empty throttle: %v %+v", err, got)
	}
	lock := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	if err := s.LoginThrottlePut(sys, store.LoginThrottle{Key: "k", Failures: 3, WindowStart: time.Now(), LockedUntil: &lock}); err != nil {
		t.Fatal(err)
	}
	if err := s.LoginThrottlePut(sys, store.LoginThrottle{Key: "k", Failures: 4, WindowStart: time.Now(), LockedUntil: &lock}); err != nil {
		t.Fatal(err)
	}
	got, err = s.LoginThrottleGet(sys, "k")
	if err != nil || got.Failures != 4 || got.LockedUntil == nil || !got.LockedUntil.Equal(lock) {
		t.Fatalf("throttle: %v %+v", err, got)
	}
	if err := s.LoginThrottleDelete(sys, "k"); err != nil {
		t.Fatal(err)
	}
}

func testMeta(t *testing.T, s store.Store) {
	evil := `x'); DROP TABLE users; --"\%_`
	u := NewUser(t, s, evil+"@example.com")
	got, err := s.UserGetByEmail(sys, evil+"@example.com")
	if err != nil || got.ID != u.ID {
		t.Fatalf("metacharacters must round-trip: %v", err)
	}
	if _, err := s.UserGetByEmail(sys, "%"); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("%% must not match as a wildcard: %v", err)
	}
}
