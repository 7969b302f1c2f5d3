package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/golang-jwt/jwt/v5"
)

func TestAuthFlow(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		a := s.SignUp(t, "alice@example.com")
		var me struct {
			User struct{ Email string } `json:"user"`
			Via  string                 `json:"via"`
		}
		a.MustJSON("GET", "/api/auth/me", nil, 200, &me)
		if me.User.Email != "alice@example.com" || me.Via != "session" {
			t.Fatalf("me: %+v", me)
		}

		// Cookie-authenticated state changes need the CSRF token.
		csrf := a.CSRF
		a.CSRF = ""
		if r := a.Do("POST", "/api/auth/logout", nil); r.Status != 403 || !strings.Contains(string(r.Body), "CSRF") {
			t.Fatalf("logout without CSRF: %d %s", r.Status, r.Body)
		}
		a.CSRF = "wrong"
		if r := a.Do("POST", "/api/tokens", map[string]string{"name": "x"}); r.Status != 403 {
			t.Fatalf("token create with wrong CSRF: %d", r.Status)
		}
		a.CSRF = csrf
		a.MustJSON("POST", "/api/auth/logout", nil, 200, nil)
		if r := a.Do("GET", "/api/auth/me", nil); r.Status != 401 {
			t.Fatalf("me after logout: %d", r.Status)
		}

		// Wrong password, then throttling after 5 failures.
		anon := s.NewClient(t)
		for i := 0; i < 5; i++ {
			r := anon.Do("POST", "/api/auth/login", map[string]string{"email": "alice@example.com", "password": "wrong password"})
			if r.Status != 401 {
				t.Fatalf("bad login %d: %d %s", i, r.Status, r.Body)
			}
		}
		r := anon.Do("POST", "/api/auth/login", map[string]string{"email": "alice@example.com", "password": "correct horse battery"})
		if r.Status != 429 {
			t.Fatalf("after 5 failures the account must be locked: %d %s", r.Status, r.Body)
		}
		// Another account from the same IP still works (IP limit is higher).
		s.SignUp(t, "bob@example.com")
		var sv struct {
			CSRFToken string `json:"csrf_token"`
		}
		anon.MustJSON("POST", "/api/auth/login", map[string]string{"email": "BOB@example.com", "password": "correct horse battery"}, 200, &sv)
		if sv.CSRFToken == "" {
			t.Fatal("login returned no CSRF token")
		}
		// Duplicate sign-up.
		if r := s.NewClient(t).Do("POST", "/api/auth/signup", map[string]string{"email": "alice@example.com", "password": "another password"}); r.Status != 409 {
			t.Fatalf("duplicate signup: %d", r.Status)
		}
	})
}

func TestSessionCookieFlags(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{Env: map[string]string{"BRIGHTRUN_SECURE_COOKIES": "true"}})
	c := s.NewClient(t)
	r := c.Do("POST", "/api/auth/signup", map[string]string{"email": "c@example.com", "password": "correct horse battery"})
	if r.Status != 201 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	sc := r.Header.Get("Set-Cookie")
	for _, want := range []string{auth.SessionCookie + "=", "HttpOnly", "Secure", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
}

func TestAPITokens(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		a := s.SignUp(t, "alice@example.com")
		var created struct {
			Token    string `json:"token"`
			APIToken struct {
				ID     string `json:"id"`
				Prefix string `json:"prefix"`
			} `json:"api_token"`
		}
		a.MustJSON("POST", "/api/tokens", map[string]any{"name": "ci", "expires_in_days": 30}, 201, &created)
		if !strings.HasPrefix(created.Token, auth.TokenPrefix) || !strings.HasPrefix(created.Token, created.APIToken.Prefix) {
			t.Fatalf("token %q prefix %q", created.Token, created.APIToken.Prefix)
		}
		bot := s.NewClient(t)
		bot.Bearer = created.Token
		var me struct{ Via string }
		bot.MustJSON("GET", "/api/auth/me", nil, 200, &me)
		if me.Via != "token" {
			t.Fatalf("via %q", me.Via)
		}
		// Bearer requests need no CSRF token (browsers never send them on their own).
		bot.MustJSON("POST", "/api/tokens", map[string]string{"name": "child"}, 201, nil)

		for _, bad := range []string{created.Token + "x", "br_short", strings.ToUpper(created.Token), "eyJhbGciOiJIUzI1NiJ9.e30.x"} {
			c := s.NewClient(t)
			c.Bearer = bad
			if r := c.Do("GET", "/api/auth/me", nil); r.Status != 401 {
				t.Fatalf("tampered token %q: %d", bad, r.Status)
			}
		}
		c := s.NewClient(t)
		req, _ := http.NewRequest("GET", s.URL+"/api/auth/me", nil)
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		if r := c.Send(req); r.Status != 401 || !strings.Contains(string(r.Body), "Bearer") {
			t.Fatalf("basic auth: %d %s", r.Status, r.Body)
		}

		a.MustJSON("DELETE", "/api/tokens/"+created.APIToken.ID, nil, 200, nil)
		if r := bot.Do("GET", "/api/auth/me", nil); r.Status != 401 || !strings.Contains(string(r.Body), "revoked") {
			t.Fatalf("revoked token: %d %s", r.Status, r.Body)
		}

		// An expired token is refused.
		past := time.Now().Add(-time.Minute)
		tok, _, err := auth.CreateToken(context.Background(), s.App.Store, a.UserID, "old", &past, time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		bot.Bearer = tok
		if r := bot.Do("GET", "/api/auth/me", nil); r.Status != 401 || !strings.Contains(string(r.Body), "expired") {
			t.Fatalf("expired token: %d %s", r.Status, r.Body)
		}
	})
}

func TestPagesRequireLogin(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.NewClient(t)
	for _, p := range []string{"/", "/settings"} {
		req, _ := http.NewRequest("GET", s.URL+p, nil)
		req.Header.Set("Accept", "text/html")
		r := c.Send(req)
		if r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/login?next=") {
			t.Fatalf("%s anonymous: %d %s", p, r.Status, r.Header.Get("Location"))
		}
	}
	// Open redirects after login are refused.
	s.SignUp(t, "r@example.com")
	form := url.Values{"email": {"r@example.com"}, "password": {"correct horse battery"}, "next": {"//evil.example.com/"}}
	req, _ := http.NewRequest("POST", s.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := c.Send(req); r.Status != 303 || r.Header.Get("Location") != "/" {
		t.Fatalf("open redirect: %d %q", r.Status, r.Header.Get("Location"))
	}
	// A cross-site form post is refused.
	req, _ = http.NewRequest("POST", s.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example.com")
	if r := c.Send(req); r.Status != 403 {
		t.Fatalf("cross-origin login: %d", r.Status)
	}
}

// TestSupabaseMode runs the server with BRIGHTRUN_AUTH=supabase: a Supabase
// access token (HS256 project secret) in the Authorization header or in
// Supabase's auth cookie identifies the user; the user row is created on
// first sight so the user's data can reference it.
func TestSupabaseMode(t *testing.T) {
	const secret = "super-secret-jwt-token-with-at-least-32-characters"
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{Env: map[string]string{
			"BRIGHTRUN_AUTH": "supabase", "BRIGHTRUN_SUPABASE_URL": "https://proj.supabase.co", "BRIGHTRUN_SUPABASE_JWT_SECRET": secret,
			"BRIGHTRUN_SUPABASE_JWKS_URL": "-",
		}})
		sub := "5d9c7a2e-1111-4222-8333-444455556666"
		mk := func(exp time.Time, aud string) string {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "email": "sb@example.com", "aud": aud,
				"iss": "https://proj.supabase.co/auth/v1", "exp": exp.Unix(), "role": "authenticated"}).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		c := s.NewClient(t)
		c.Bearer = mk(time.Now().Add(time.Hour), "authenticated")
		var me struct {
			User struct{ ID, Email string } `json:"user"`
			Via  string                     `json:"via"`
		}
		c.MustJSON("GET", "/api/auth/me", nil, 200, &me)
		if me.User.ID != sub || me.Via != "jwt" {
			t.Fatalf("me: %+v", me)
		}
		c.MustJSON("POST", "/api/tokens", map[string]string{"name": "from-jwt"}, 201, nil)
		for name, tok := range map[string]string{"expired": mk(time.Now().Add(-time.Minute), "authenticated"), "anon audience": mk(time.Now().Add(time.Hour), "anon")} {
			c.Bearer = tok
			if r := c.Do("GET", "/api/auth/me", nil); r.Status != 401 {
				t.Fatalf("%s token: %d %s", name, r.Status, r.Body)
			}
		}
		// Supabase's cookie works for pages and needs the CSRF double-submit token for writes.
		ck := s.NewClient(t)
		req, _ := http.NewRequest("GET", s.URL+"/api/auth/me", nil)
		req.AddCookie(&http.Cookie{Name: "sb-proj-auth-token", Value: url.QueryEscape(`{"access_token":"` + mk(time.Now().Add(time.Hour), "authenticated") + `"}`)})
		if r := ck.Send(req); r.Status != 200 || !strings.Contains(string(r.Body), "supabase_cookie") {
			t.Fatalf("cookie auth: %d %s", r.Status, r.Body)
		}
		req, _ = http.NewRequest("POST", s.URL+"/api/tokens", strings.NewReader(`{"name":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: "sb-proj-auth-token", Value: url.QueryEscape(`{"access_token":"` + mk(time.Now().Add(time.Hour), "authenticated") + `"}`)})
		if r := ck.Send(req); r.Status != 403 {
			t.Fatalf("cookie write without CSRF: %d %s", r.Status, r.Body)
		}
		// Local sign-up is refused in Supabase mode.
		if r := s.NewClient(t).Do("POST", "/api/auth/signup", map[string]string{"email": "x@example.com", "password": "longenough"}); r.Status != 400 {
			t.Fatalf("signup in supabase mode: %d", r.Status)
		}
	})
}
