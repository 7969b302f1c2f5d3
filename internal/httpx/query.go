package httpx

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/textsafe"
)

// CleanInput refuses, before any handler runs, a malformed query string
// (Go's url.Query would silently drop the bad pair) and query or form values
// that hold NUL bytes or control characters, naming the parameter. Form
// bodies are parsed here only for urlencoded forms; the handler reads the
// same parsed values.
func CleanInput(errs *Errors) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := checkInput(r); err != nil {
				errs.Write(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func checkInput(r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apperr.BadRequest("malformed query string: %v (encode special characters with %%XX)", err)
	}
	if err := checkValues("query parameter", q); err != nil {
		return err
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil
	}
	if err := r.ParseForm(); err != nil {
		return apperr.BadRequest("malformed form body: %v", err)
	}
	return checkValues("form field", r.PostForm)
}

func checkValues(what string, vals url.Values) error {
	for k, vs := range vals {
		if p := textsafe.Problem(k, false); p != "" {
			return apperr.BadRequest("a %s name %s", what, p)
		}
		for _, v := range vs {
			if p := textsafe.Problem(v, true); p != "" {
				return apperr.Validation(fmt.Sprintf("%s %q %s", what, k, p), map[string]string{k: p})
			}
		}
	}
	return nil
}
