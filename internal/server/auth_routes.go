package server

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
)

func (d *Deps) authRoutes(m *Mux) {
	m.Public("POST /api/auth/signup", d.apiSignup)
	m.Public("POST /api/auth/login", d.apiLogin)
	m.API("POST /api/auth/logout", d.apiLogout)
	m.API("GET /api/auth/me", d.apiMe)
	m.API("GET /api/tokens", d.apiTokenList)
	m.API("POST /api/tokens", d.apiTokenCreate)
	m.API("DELETE /api/tokens/{id}", d.apiTokenRevoke)

	m.Public("GET /login", d.loginPage)
	m.Public("POST /login", d.loginForm)
	m.Public("GET /signup", d.signupPage)
	m.Public("POST /signup", d.signupForm)
	m.API("POST /logout", d.logoutForm)
}

func (d *Deps) localOnly() error {
	if d.Config.Auth != "local" {
		return apperr.BadRequest("this server uses Supabase Auth: sign in through your Supabase project and send its access token")
	}
	return nil
}

func (d *Deps) signupAllowed() error {
	if err := d.localOnly(); err != nil {
		return err
	}
	if !d.Config.AllowSignup {
		return apperr.Forbidden("sign-up is disabled on this server: ask an administrator for an account")
	}
	return nil
}

func (d *Deps) startSession(w http.ResponseWriter, r *http.Request, c auth.Credentials) (store.Session, error) {
	cookie, se, err := d.Local.Login(r.Context(), c, clientIP(r, d.trustedProxies), r.UserAgent())
	if err != nil {
		return se, err
	}
	d.Auth.SetSessionCookie(w, cookie, se.ExpiresAt)
	return se, nil
}

type sessionView struct {
	User      store.User `json:"user"`
	CSRFToken string     `json:"csrf_token"`
	ExpiresAt time.Time  `json:"expires_at"`
}

func (d *Deps) apiSignup(w http.ResponseWriter, r *http.Request) error {
	if err := d.signupAllowed(); err != nil {
		return err
	}
	var c auth.Credentials
	if err := httpx.DecodeJSON(w, r, &c, 0); err != nil {
		return err
	}
	u, err := d.Local.Signup(r.Context(), c)
	if err != nil {
		return err
	}
	se, err := d.startSession(w, r, c)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, sessionView{User: u, CSRFToken: se.CSRFToken, ExpiresAt: se.ExpiresAt})
}

func (d *Deps) apiLogin(w http.ResponseWriter, r *http.Request) error {
	if err := d.localOnly(); err != nil {
		return err
	}
	var c auth.Credentials
	if err := httpx.DecodeJSON(w, r, &c, 0); err != nil {
		return err
	}
	se, err := d.startSession(w, r, c)
	if err != nil {
		return err
	}
	u, err := d.Store.UserGet(store.AsSystem(r.Context()), se.UserID)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, sessionView{User: u, CSRFToken: se.CSRFToken, ExpiresAt: se.ExpiresAt})
}

func (d *Deps) endSession(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	if p.SessionID != "" {
		if err := d.Local.Logout(r.Context(), p.SessionID); err != nil {
			return err
		}
	}
	d.Auth.ClearSessionCookie(w)
	return nil
}

func (d *Deps) apiLogout(w http.ResponseWriter, r *http.Request) error {
	if err := d.endSession(w, r); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"logged_out": true})
}

func (d *Deps) apiMe(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	// auth.users is not readable by the authenticated role (as on Supabase).
	u, err := d.Store.UserGet(store.AsSystem(r.Context()), p.UserID)
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"user": u, "via": p.Via})
}

func (d *Deps) apiTokenList(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	list, err := d.Store.APITokenList(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.APIToken{}
	}
	return httpx.OK(w, http.StatusOK, map[string]any{"tokens": list})
}

type tokenCreateReq struct {
	Name          string `json:"name"`
	ExpiresInDays int    `json:"expires_in_days"`
}

func (d *Deps) apiTokenCreate(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	var req tokenCreateReq
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if req.ExpiresInDays < 0 || req.ExpiresInDays > 3650 {
		return apperr.Validation("validation failed", map[string]string{"expires_in_days": "use 0 (never) to 3650 days"})
	}
	var exp *time.Time
	if req.ExpiresInDays > 0 {
		t := d.Now().UTC().Add(time.Duration(req.ExpiresInDays) * 24 * time.Hour)
		exp = &t
	}
	tok, t, err := auth.CreateToken(r.Context(), d.Store, p.UserID, req.Name, exp, d.Now().UTC())
	if err != nil {
		return err
	}
	return httpx.OK(w, http.StatusCreated, map[string]any{"token": tok, "api_token": t})
}

func (d *Deps) apiTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	if err := d.Store.APITokenRevoke(r.Context(), p.UserID, r.PathValue("id"), d.Now().UTC()); err != nil {
		return err
	}
	return httpx.OK(w, http.StatusOK, map[string]bool{"revoked": true})
}

// safeNext keeps post-login redirects on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" {
		return "/"
	}
	return next
}

type loginData struct {
	Next, Email string
	AllowSignup bool
}

func (d *Deps) loginPage(w http.ResponseWriter, r *http.Request) error {
	if _, ok := auth.PrincipalFrom(r.Context()); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	p := ui.PageFor(r, "Sign in", "", loginData{Next: safeNext(r.URL.Query().Get("next")), AllowSignup: d.Config.AllowSignup && d.Config.Auth == "local"})
	if d.Config.Auth != "local" {
		p.Error = "This server uses Supabase Auth: sign in through your Supabase app; its session cookie works here."
	}
	return d.UI.Render(w, http.StatusOK, "login", p)
}

func (d *Deps) loginForm(w http.ResponseWriter, r *http.Request) error {
	if err := d.localOnly(); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c := auth.Credentials{Email: r.PostFormValue("email"), Password: r.PostFormValue("password")}
	next := safeNext(r.PostFormValue("next"))
	if _, err := d.startSession(w, r, c); err != nil {
		ae, ok := apperr.As(err)
		if !ok || (ae.Kind != apperr.KindUnauthorized && ae.Kind != apperr.KindRateLimited) {
			return err
		}
		p := ui.PageFor(r, "Sign in", "", loginData{Next: next, Email: c.Email, AllowSignup: d.Config.AllowSignup})
		p.Error = ae.Message
		return d.UI.Render(w, httpx.Status(ae.Kind), "login", p)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

type signupData struct {
	Email  string
	Fields map[string]string
}

func (d *Deps) signupPage(w http.ResponseWriter, r *http.Request) error {
	if err := d.signupAllowed(); err != nil {
		return err
	}
	return d.UI.Render(w, http.StatusOK, "signup", ui.PageFor(r, "Create account", "", signupData{}))
}

func (d *Deps) signupForm(w http.ResponseWriter, r *http.Request) error {
	if err := d.signupAllowed(); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c := auth.Credentials{Email: r.PostFormValue("email"), Password: r.PostFormValue("password")}
	if _, err := d.Local.Signup(r.Context(), c); err != nil {
		ae, ok := apperr.As(err)
		if !ok || (ae.Kind != apperr.KindValidation && ae.Kind != apperr.KindConflict) {
			return err
		}
		fields := fieldMap(ae.Details)
		if ae.Kind == apperr.KindConflict {
			fields = map[string]string{"email": ae.Message}
		}
		p := ui.PageFor(r, "Create account", "", signupData{Email: c.Email, Fields: fields})
		p.Error = ae.Message
		if ae.Kind == apperr.KindValidation {
			p.Error = "Please fix the highlighted fields."
		}
		return d.UI.Render(w, httpx.Status(ae.Kind), "signup", p)
	}
	if _, err := d.startSession(w, r, c); err != nil {
		return err
	}
	http.Redirect(w, r, "/?flash="+url.QueryEscape("Welcome to BrightRun! Upload a dataset to get started."), http.StatusSeeOther)
	return nil
}

func fieldMap(v any) map[string]string {
	m, _ := v.(map[string]string)
	return m
}

func (d *Deps) logoutForm(w http.ResponseWriter, r *http.Request) error {
	if err := d.endSession(w, r); err != nil {
		return err
	}
	http.Redirect(w, r, "/login?flash="+url.QueryEscape("You have signed out."), http.StatusSeeOther)
	return nil
}
