// Package ui renders BrightRun's server-side pages (html/template + htmx) and
// serves the embedded front-end bundle.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/auth"
)

//go:embed templates/*.html
var templatesFS embed.FS

//go:embed static
var staticFS embed.FS

// NavItem is one entry of the main navigation.
type NavItem struct{ ID, Label, Href string }

var nav = []NavItem{
	{"dashboard", "Dashboard", "/"},
	{"datasets", "Datasets", "/datasets"},
	{"training", "Training", "/training/jobs"},
	{"models", "Models", "/models"},
	{"costs", "Costs", "/costs"},
	{"agents", "Agents", "/agents"},
}

// Page is what every template receives.
type Page struct {
	Title string
	Page  string // data-page hook for page scripts
	Nav   string
	User  *auth.Principal
	CSRF  string
	Flash string
	Error string
	Data  any
}

// Renderer renders pages.
type Renderer struct {
	pages  map[string]*template.Template
	assets map[string]string // file → content hash, for cache busting
	log    *slog.Logger
}

// Layout names which wrapper a page uses.
var authPages = map[string]bool{"login": true, "signup": true}

// New parses every template and hashes the assets.
func New(log *slog.Logger) (*Renderer, error) {
	r := &Renderer{pages: map[string]*template.Template{}, assets: map[string]string{}, log: log}
	dist, _ := fs.Sub(staticFS, "static/dist")
	_ = fs.WalkDir(dist, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(dist, p)
			h := sha256.Sum256(b)
			r.assets[p] = hex.EncodeToString(h[:6])
		}
		return nil
	})
	if len(r.assets) == 0 {
		log.Warn("front-end bundle missing: run `make build` (npm run build in web/)")
	}
	funcs := template.FuncMap{
		"asset":    func(name string) string { return "/static/dist/" + name + "?v=" + r.assets[name] },
		"navItems": func() []NavItem { return nav },
		"initial": func(s string) string {
			if s == "" {
				return "?"
			}
			return s[:1]
		},
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"bytes":     humanBytes,
		"num64":     func(n int64) string { return groupDigits(n) },
		"add":       func(a, b int) int { return a + b },
		"sub":       func(a, b int) int { return a - b },
		"list":      func(s ...string) []string { return s },
		"trainable": trainable,
		"stars":     stars,
		"dur": func(a, b time.Time) string {
			return b.Sub(a).Round(time.Second).String()
		},
		"pct": func(v, max float64) float64 {
			if max <= 0 {
				return 0
			}
			return math.Min(100, math.Round(1000*v/max)/10)
		},
		"addF":        func(a, b float64) float64 { return a + b },
		"qnum":        qnum,
		"label":       Label,
		"lossChange":  lossChange,
		"plural":      plural,
		"costDetails": costDetails,
		"derefF": func(f *float64) float64 {
			if f == nil {
				return 0
			}
			return *f
		},
		"deref": func(t *time.Time) time.Time {
			if t == nil {
				return time.Time{}
			}
			return *t
		},
	}
	entries, err := fs.Glob(templatesFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := strings.TrimSuffix(path.Base(e), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templatesFS, "templates/layout.html", e)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		r.pages[name] = t
	}
	return r, nil
}

// Render writes page name with status. The page is rendered to a buffer
// first, so a template error never leaves a half-written page.
func (r *Renderer) Render(w http.ResponseWriter, status int, name string, p Page) error {
	t, ok := r.pages[name]
	if !ok {
		return fmt.Errorf("ui: no template %q", name)
	}
	layout := "base"
	// Signed-out visitors see auth pages and error pages without the
	// app's navigation (it leads nowhere without an account).
	if authPages[name] || (name == "error" && p.User == nil) {
		layout = "auth"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, layout, p); err != nil {
		return fmt.Errorf("ui: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := buf.WriteTo(w)
	return err
}

// PageFor fills the common page fields from the request.
func PageFor(req *http.Request, title, nav string, data any) Page {
	p := Page{Title: title, Nav: nav, Data: data}
	if pr, ok := auth.PrincipalFrom(req.Context()); ok {
		p.User = &pr
		p.CSRF = pr.CSRFToken
	}
	p.Flash = req.URL.Query().Get("flash")
	if len(p.Flash) > 200 {
		p.Flash = ""
	}
	return p
}

var statusTitles = map[int]string{
	400: "That request did not work", 401: "Please sign in", 403: "Not allowed", 404: "Page not found",
	409: "Conflict", 413: "Too large", 429: "Slow down", 500: "Something went wrong",
}

// ErrorPage renders an error page (httpx.ErrorPage).
func (r *Renderer) ErrorPage(w http.ResponseWriter, req *http.Request, status int, message, requestID string) {
	title := statusTitles[status]
	if title == "" {
		title = http.StatusText(status)
	}
	if status == 404 && message == "" {
		message = "The page you asked for does not exist, or you do not have access to it."
	}
	p := PageFor(req, title, "", map[string]any{"Status": status, "Title": title, "Message": message, "RequestID": requestID})
	if err := r.Render(w, status, "error", p); err != nil {
		r.log.Error("error page failed", "err", err)
		http.Error(w, message, status)
	}
}

// Static serves the embedded assets (mount it under http.StripPrefix) with
// long-lived caching (URLs carry a content hash). Only files are served:
// directories are never listed, and a directory or a missing file goes to
// notFound (the app's 404 page).
func Static(notFound http.Handler) http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if !fs.ValidPath(name) || name == "." {
			notFound.ServeHTTP(w, r)
			return
		}
		f, err := sub.Open(name)
		if err != nil {
			notFound.ServeHTTP(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		rs, seekable := f.(io.ReadSeeker)
		if err != nil || !fi.Mode().IsRegular() || !seekable {
			notFound.ServeHTTP(w, r)
			return
		}
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		http.ServeContent(w, r, name, fi.ModTime(), rs)
	})
}
