// Package httpx holds the HTTP conventions: handlers that return errors, the
// one place that maps typed errors to status codes and envelopes, JSON
// decoding with clear messages, and the middleware chain.
package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
)

// Handler is an HTTP handler that returns its error instead of writing it.
type Handler func(w http.ResponseWriter, r *http.Request) error

// ErrorPage renders an HTML error page (provided by the UI package).
type ErrorPage func(w http.ResponseWriter, r *http.Request, status int, message, requestID string)

// Errors writes errors: JSON envelopes for the API, HTML pages otherwise.
type Errors struct {
	Log  *slog.Logger
	Page ErrorPage
}

// H adapts a Handler.
func (e *Errors) H(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			e.Write(w, r, err)
		}
	})
}

// Status maps an error kind to its HTTP status.
func Status(k apperr.Kind) int {
	switch k {
	case apperr.KindValidation:
		return http.StatusBadRequest
	case apperr.KindUnauthorized:
		return http.StatusUnauthorized
	case apperr.KindForbidden:
		return http.StatusForbidden
	case apperr.KindNotFound:
		return http.StatusNotFound
	case apperr.KindConflict:
		return http.StatusConflict
	case apperr.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.KindRateLimited:
		return http.StatusTooManyRequests
	case apperr.KindUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case apperr.KindMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case apperr.KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// IsAPI reports whether r expects JSON rather than HTML.
func IsAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html")
}

// ErrorBody is the spec's error envelope.
type ErrorBody struct {
	Error     string `json:"error"`
	Details   any    `json:"details,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Public is err as a client may see it, with its status: internal errors
// are logged with the request id and replaced by a generic message.
func (e *Errors) Public(r *http.Request, err error) (*apperr.Error, int) {
	rid := RequestID(r.Context())
	ae, ok := apperr.As(err)
	if !ok {
		if errors.Is(err, http.ErrHandlerTimeout) || r.Context().Err() != nil {
			e.Log.Warn("request cancelled", "request_id", rid, "err", err)
		} else {
			e.Log.Error("internal error", "request_id", rid, "method", r.Method, "path", r.URL.Path, "err", err)
		}
		ae = &apperr.Error{Kind: apperr.KindInternal, Message: "internal server error (request id " + rid + ")"}
	} else if ae.Kind == apperr.KindInternal {
		e.Log.Error("internal error", "request_id", rid, "err", err)
		ae = &apperr.Error{Kind: apperr.KindInternal, Message: "internal server error (request id " + rid + ")"}
	}
	return ae, Status(ae.Kind)
}

// Write writes err to w. Internal errors are logged with the request id and
// shown only as a generic message with that id.
func (e *Errors) Write(w http.ResponseWriter, r *http.Request, err error) {
	rid := RequestID(r.Context())
	ae, status := e.Public(r, err)
	if IsOpenAI(r) {
		JSON(w, status, OpenAIErrorBody{Error: openAIError(ae, status)})
		return
	}
	if IsAPI(r) || e.Page == nil {
		JSON(w, status, ErrorBody{Error: ae.Message, Details: ae.Details, RequestID: rid})
		return
	}
	if status == http.StatusUnauthorized && r.Method == http.MethodGet {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	e.Page(w, r, status, ae.Message, rid)
}

// StreamError is err as the body of an error event in a stream whose
// headers were already sent: OpenAI's shape on /v1, the envelope elsewhere.
func (e *Errors) StreamError(r *http.Request, err error) any {
	ae, status := e.Public(r, err)
	if IsOpenAI(r) {
		return OpenAIErrorBody{Error: openAIError(ae, status)}
	}
	return ErrorBody{Error: ae.Message, Details: ae.Details, RequestID: RequestID(r.Context())}
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// Success is the spec's success envelope.
type Success struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

// OK writes {"success": true, "data": data}.
func OK(w http.ResponseWriter, status int, data any) error {
	JSON(w, status, Success{Success: true, Data: data})
	return nil
}
