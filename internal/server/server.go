// Package server wires the domains into one http.Handler: middleware chain,
// routes, and the catch-all 404/405 handling.
package server

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/config"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/ui"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Deps are the server's dependencies, built by cmd/brightrun.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Store    store.Store
	Auth     *auth.Authenticator
	Local    *auth.Local
	UI       *ui.Renderer
	Errors   *httpx.Errors
	Registry *prometheus.Registry
	Now      func() time.Time
	// Mounts adds domain routes (datasets, storage, …) to the mux.
	Mounts []func(m *Mux)

	trustedProxies []netip.Prefix // from Config, set by Build
}

// Mux is the router plus the wrappers a route needs.
type Mux struct {
	*http.ServeMux
	Deps *Deps
	// UserRoutes lists every route that acts for a signed-in user, so the
	// cross-user test harness can check each one has a case.
	UserRoutes []string
}

// API registers a JSON route that requires a signed-in user.
func (m *Mux) API(pattern string, h httpx.Handler) {
	m.UserRoutes = append(m.UserRoutes, pattern)
	m.Handle(pattern, m.Deps.Auth.RequireUser(m.Deps.Errors.H(h)))
}

// Page registers an HTML route that requires a signed-in user.
func (m *Mux) Page(pattern string, h httpx.Handler) { m.API(pattern, h) }

// Public registers a route open to everyone.
func (m *Mux) Public(pattern string, h httpx.Handler) { m.Handle(pattern, m.Deps.Errors.H(h)) }

// Build builds the handler and returns the user routes it registered.
func Build(d *Deps) (http.Handler, []string) {
	m := &Mux{ServeMux: http.NewServeMux(), Deps: d}
	d.trustedProxies, _ = d.Config.TrustedProxyCIDRs() // validated at start-up
	m.Handle("GET /static/", http.StripPrefix("/static/", ui.Static(d.Errors.H(func(http.ResponseWriter, *http.Request) error { return apperr.NotFound("page") }))))
	m.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	m.Public("GET /healthz", d.health)
	d.authRoutes(m)
	d.pageRoutes(m)
	for _, mount := range d.Mounts {
		mount(m)
	}
	m.Public("/", func(w http.ResponseWriter, r *http.Request) error {
		if allow := allowedMethods(m.ServeMux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return &apperr.Error{Kind: apperr.KindMethodNotAllowed, Message: r.Method + " is not allowed here; allowed: " + strings.Join(allow, ", ")}
		}
		return apperr.NotFound(notFoundWhat(r))
	})
	metrics := httpx.NewMetrics(d.Registry)
	return httpx.Chain(httpx.RecordRoute(m.ServeMux),
		httpx.WithRequestID,
		httpx.Observe(d.Log, metrics, d.Errors),
		httpx.CleanInput(d.Errors),
		httpx.SecurityHeaders(connectSources(d.Config)...),
		sameOrigin(d.Config.PublicURL, d.Errors),
		d.Auth.Identify,
	), m.UserRoutes
}

// connectSources are the origins besides 'self' that the app's scripts may
// connect to: the public URL (local storage signs upload URLs with it) and,
// with S3, the endpoint the signed dataset upload URLs point at (the bucket's
// own host with virtual-hosted addressing).
func connectSources(c config.Config) []string {
	var out []string
	add := func(scheme, host string) {
		o := scheme + "://" + host
		for _, x := range out {
			if x == o {
				return
			}
		}
		out = append(out, o)
	}
	if u, err := url.Parse(c.PublicURL); err == nil && u.Host != "" {
		add(u.Scheme, u.Host)
	}
	if c.Storage == "s3" {
		if u, err := url.Parse(c.S3Endpoint); err == nil && u.Host != "" {
			if c.S3PathStyle {
				add(u.Scheme, u.Host)
			} else {
				add(u.Scheme, c.S3BucketPrefix+storage.BucketDatasets+"."+u.Host)
			}
		}
	}
	return out
}

func notFoundWhat(r *http.Request) string {
	if httpx.IsAPI(r) {
		return "API route " + r.Method + " " + r.URL.Path
	}
	return "page"
}

// allowedMethods lists the methods that have a route for r's path (the
// catch-all "/" aside), for 405 answers.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := mux.Handler(r2); p != "" && p != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// sameOrigin refuses cross-site state-changing requests that carry an Origin
// header from elsewhere (defence in depth beside SameSite cookies and CSRF
// tokens; it also protects the login and sign-up forms).
func sameOrigin(publicURL string, errs *httpx.Errors) func(http.Handler) http.Handler {
	pu, _ := url.Parse(publicURL)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
			default:
				if o := r.Header.Get("Origin"); o != "" && o != "null" {
					ou, err := url.Parse(o)
					if err != nil || !(ou.Host == r.Host || (pu != nil && ou.Host == pu.Host && ou.Scheme == pu.Scheme)) {
						errs.Write(w, r, apperr.Forbidden("cross-origin request refused (Origin %s)", o))
						return
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (d *Deps) health(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	status, db := http.StatusOK, "ok"
	if err := d.Store.Ping(ctx); err != nil {
		d.Log.Error("health: database", "err", err)
		status, db = http.StatusServiceUnavailable, "unavailable"
	}
	httpx.JSON(w, status, map[string]any{"status": map[bool]string{true: "ok", false: "degraded"}[status == http.StatusOK], "database": db, "engine": d.Store.Engine()})
	return nil
}
