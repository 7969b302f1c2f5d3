package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStaticNoListingsAndAppNotFound: directories are never listed and a
// missing asset goes to the given 404 handler; files are served.
func TestStaticNoListingsAndAppNotFound(t *testing.T) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot) // stands for the app's 404 page
		w.Write([]byte("app 404"))
	})
	h := http.StripPrefix("/static/", Static(notFound))
	for _, p := range []string{"/static/", "/static/nope", "/static/dist/", "/static/dist", "/static/./", "/static/README.md/", "/static/%2e%2e/ui.go"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusTeapot || rec.Body.String() != "app 404" {
			t.Errorf("GET %s: %d %q, want the app's 404 handler", p, rec.Code, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/static/README.md?v=abc", nil))
	if rec.Code != 200 || rec.Body.Len() == 0 || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Fatalf("GET a file: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}
