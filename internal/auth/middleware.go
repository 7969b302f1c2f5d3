package auth

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/store"
)

// Cookie names.
const (
	SessionCookie = "br_session"
	CSRFCookie    = "br_csrf" // double-submit token for Supabase cookie auth
	CSRFHeader    = "X-CSRF-Token"
	CSRFField     = "csrf_token"
)

// Authenticator is the one middleware that identifies the user of a request
// from an API token, a Supabase JWT, or a session cookie.
type Authenticator struct {
	Mode          string // "local" or "supabase"
	Store         store.Store
	Local         *Local
	Supabase      *Supabase
	Errors        *httpx.Errors
	SecureCookies bool
	Now           func() time.Time

	ensured sync.Map // Supabase user ids already present in the users table
}

// Identify attaches the principal, when the request carries valid
// credentials. Bad bearer credentials are a 401; a stale cookie is ignored.
func (a *Authenticator) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := a.identify(w, r)
		if err != nil {
			a.Errors.Write(w, r, err)
			return
		}
		if ok {
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Authenticator) identify(w http.ResponseWriter, r *http.Request) (Principal, bool, error) {
	now := a.Now().UTC()
	if strings.HasPrefix(r.URL.Path, "/api/agent/") {
		return Principal{}, false, nil // agents use agent and job tokens (agentapi)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return Principal{}, false, apperr.Unauthorized("use Authorization: Bearer <token>")
		}
		if strings.HasPrefix(tok, TokenPrefix) {
			p, err := TokenPrincipal(r.Context(), a.Store, tok, now)
			return p, err == nil, err
		}
		if a.Mode == "supabase" {
			p, err := a.Supabase.Verify(tok)
			if err == nil {
				err = a.ensure(r.Context(), p)
			}
			return p, err == nil, err
		}
		return Principal{}, false, apperr.Unauthorized("the API token is not valid (BrightRun tokens start with %s)", TokenPrefix)
	}
	if a.Mode == "supabase" {
		tok := CookieToken(r)
		if tok == "" {
			return Principal{}, false, nil
		}
		p, err := a.Supabase.Verify(tok)
		if err != nil {
			return Principal{}, false, nil
		}
		if err := a.ensure(r.Context(), p); err != nil {
			return Principal{}, false, err
		}
		p.Via = "supabase_cookie"
		p.CSRFToken = a.csrfCookie(w, r)
		return p, true, nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Principal{}, false, nil
	}
	se, err := a.Local.Session(r.Context(), c.Value)
	if err != nil {
		if apperr.Is(err, apperr.KindUnauthorized) {
			a.ClearSessionCookie(w)
			return Principal{}, false, nil
		}
		return Principal{}, false, err
	}
	u, err := a.Store.UserGet(store.AsSystem(r.Context()), se.UserID)
	if err != nil {
		return Principal{}, false, nil
	}
	return Principal{UserID: se.UserID, Email: u.Email, Via: "session", CSRFToken: se.CSRFToken, SessionID: se.ID}, true, nil
}

func (a *Authenticator) ensure(ctx context.Context, p Principal) error {
	if _, ok := a.ensured.Load(p.UserID); ok {
		return nil
	}
	if _, err := a.Store.UserEnsure(store.AsSystem(ctx), p.UserID, p.Email, a.Now().UTC()); err != nil {
		return err
	}
	a.ensured.Store(p.UserID, true)
	return nil
}

func (a *Authenticator) csrfCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	v := randomString(32)
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: v, Path: "/", Secure: a.SecureCookies, SameSite: http.SameSiteLaxMode})
	return v
}

// SetSessionCookie writes the session cookie: HttpOnly, SameSite=Lax, Secure
// when the public URL is https.
func (a *Authenticator) SetSessionCookie(w http.ResponseWriter, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", Expires: expires, HttpOnly: true,
		Secure: a.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// ClearSessionCookie removes the session cookie.
func (a *Authenticator) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: a.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// RequireUser refuses requests without a principal (401 JSON for the API,
// redirect to /login for pages) and checks CSRF on cookie-authenticated
// state-changing requests.
func (a *Authenticator) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			a.Errors.Write(w, r, apperr.Unauthorized("sign in to continue (send a session cookie or Authorization: Bearer <token>)"))
			return
		}
		if err := CheckCSRF(r, p); err != nil {
			a.Errors.Write(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(store.WithUser(r.Context(), p.UserID)))
	})
}

// CheckCSRF verifies the CSRF token of unsafe cookie-authenticated requests.
func CheckCSRF(r *http.Request, p Principal) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if !p.CookieAuth() {
		return nil // bearer credentials are not sent automatically by browsers
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRFToken)) != 1 {
		return apperr.Forbidden("missing or invalid CSRF token: reload the page and try again")
	}
	return nil
}
