package e2e

import (
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// world is what user A owns; each domain adds its resources in setupWorld
// and its routes in crossUserCases, so every route is checked.
type world struct {
	t      *testing.T
	s      *testserver.Server
	a, b   *testserver.Client
	tokenA string // id of one of A's API tokens
	secret []string
}

func setupWorld(t *testing.T, s *testserver.Server) *world {
	w := &world{t: t, s: s, a: s.SignUp(t, "owner@example.com"), b: s.SignUp(t, "intruder@example.com")}
	var tok struct {
		APIToken struct{ ID, Name string } `json:"api_token"`
	}
	w.a.MustJSON("POST", "/api/tokens", map[string]string{"name": "owner-secret-token-name"}, 201, &tok)
	w.tokenA = tok.APIToken.ID
	w.secret = []string{w.a.UserID, "owner@example.com", tok.APIToken.ID, "owner-secret-token-name"}
	return w
}

func (w *world) tokenStillActive(t *testing.T) {
	var out struct {
		Tokens []struct {
			ID        string
			RevokedAt *string `json:"revoked_at"`
		} `json:"tokens"`
	}
	w.a.MustJSON("GET", "/api/tokens", nil, 200, &out)
	for _, tk := range out.Tokens {
		if tk.ID == w.tokenA && tk.RevokedAt == nil {
			return
		}
	}
	t.Fatalf("user A's token was revoked by user B")
}

func crossUserCases(w *world) []testserver.CrossUserCase {
	s := w.secret
	return []testserver.CrossUserCase{
		{Route: "GET /api/auth/me", Path: "/api/auth/me", Secret: s},
		{Route: "GET /api/tokens", Path: "/api/tokens", Secret: s},
		{Route: "POST /api/tokens", Path: "/api/tokens", Body: map[string]string{"name": "b"}, Secret: s},
		{Route: "DELETE /api/tokens/{id}", Path: "/api/tokens/" + w.tokenA, Secret: s, After: w.tokenStillActive},
		{Route: "GET /{$}", Path: "/", Secret: s},
		{Route: "GET /settings", Path: "/settings", Secret: s},
		{Route: "POST /settings/tokens", Path: "/settings/tokens", Form: "name=b2", Secret: s},
		{Route: "POST /settings/tokens/{id}/revoke", Path: "/settings/tokens/" + w.tokenA + "/revoke", Form: "x=1", Secret: s, After: w.tokenStillActive},
		{Route: "POST /api/auth/logout", Path: "/api/auth/logout", Secret: s, As: w.s.Login(w.t, "intruder@example.com")},
		{Route: "POST /logout", Path: "/logout", Form: "x=1", Secret: s, As: w.s.Login(w.t, "intruder@example.com")},
	}
}

// TestCrossUser requests every user route as user B against user A's data.
func TestCrossUser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		w := setupWorld(t, s)
		cases := crossUserCases(w)
		if missing := testserver.MissingCases(s.App.UserRoutes, cases); len(missing) > 0 {
			t.Fatalf("user routes without a cross-user case: %v", missing)
		}
		testserver.CheckCrossUser(t, w.b, cases)
	})
}
