package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type ridKey struct{}

// RequestID returns the request's id.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(ridKey{}).(string)
	return s
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WithRequestID assigns each request an id (kept from X-Request-ID when it is
// short and safe) and echoes it in the response.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if len(id) == 0 || len(id) > 64 || !safeID(id) {
			id = newID()
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ridKey{}, id)))
	})
}

func safeID(s string) bool {
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// statusWriter records the status and size written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush lets streaming handlers flush through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Metrics are the Prometheus collectors of the HTTP layer.
type Metrics struct {
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec
}

// NewMetrics registers the HTTP collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brightrun_http_requests_total", Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brightrun_http_request_duration_seconds", Help: "HTTP request latency by route pattern.", Buckets: prometheus.DefBuckets}, []string{"route", "method"}),
	}
	reg.MustRegister(m.Requests, m.Duration)
	return m
}

type routeKey struct{}

// routeSlot carries the matched route pattern back out to Observe: the mux
// sets Pattern on the request it is given, which middleware that derives a
// new request (WithContext) hides from the outer layers.
type routeSlot struct{ pattern string }

// RecordRoute wraps the router (innermost) and reports the pattern it
// matched to Observe, also when the handler panics.
func RecordRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if s, ok := r.Context().Value(routeKey{}).(*routeSlot); ok && r.Pattern != "" {
				s.pattern = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// Observe logs each request (slog), records metrics and turns panics into a
// 500 with the request id and no stack trace in the body. Metrics are
// labelled with the route pattern that RecordRoute reports ("unmatched"
// when no route took the request).
func Observe(log *slog.Logger, m *Metrics, errs *Errors) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			slot := &routeSlot{}
			r = r.WithContext(context.WithValue(r.Context(), routeKey{}, slot))
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic", "request_id", RequestID(r.Context()), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					if sw.status == 0 {
						errs.Write(sw, r, fmt.Errorf("panic: %v", p))
					}
				}
				route := slot.pattern
				if route == "" {
					route = r.Pattern
				}
				if route == "" {
					route = "unmatched"
				}
				d := time.Since(start)
				if m != nil {
					m.Requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
					m.Duration.WithLabelValues(route, r.Method).Observe(d.Seconds())
				}
				log.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.String("request_id", RequestID(r.Context())), slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes),
					slog.Duration("duration", d))
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// SecurityHeaders sets conservative browser security headers. Scripts may
// connect only to the app's own origin and to connectSrc (the origins signed
// upload URLs point at, such as the S3 endpoint).
func SecurityHeaders(connectSrc ...string) func(http.Handler) http.Handler {
	csp := "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src " +
		strings.Join(append([]string{"'self'"}, connectSrc...), " ") +
		"; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Content-Security-Policy", csp)
			next.ServeHTTP(w, r)
		})
	}
}

// Chain applies middleware in order (first is outermost).
func Chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
