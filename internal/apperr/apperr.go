// Package apperr defines the typed errors every layer returns. The HTTP layer
// maps them to status codes and envelopes in one place (httpx).
package apperr

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind classifies an error for the client.
type Kind int

// Error kinds. Internal errors never show their message to clients.
const (
	KindInternal Kind = iota
	KindValidation
	KindUnauthorized
	KindForbidden
	KindNotFound
	KindConflict
	KindTooLarge
	KindRateLimited
	KindUnsupportedMedia
	KindMethodNotAllowed
	KindUnavailable
)

// Error is an error a client may see: a message plus optional details
// (field → problem, or any JSON-able value).
type Error struct {
	Kind    Kind
	Message string
	Details any
	// Code is a stable machine-readable code for clients that branch on it
	// (the /v1 face sends it as OpenAI's error.code, e.g. "model_not_found").
	Code string
	Err  error // wrapped cause, logged but never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Is reports whether err is an *Error of kind k.
func Is(err error, k Kind) bool {
	e, ok := As(err)
	return ok && e.Kind == k
}

func newf(k Kind, format string, a ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, a...)}
}

// Validation is a 400 with field details.
func Validation(msg string, details any) *Error {
	return &Error{Kind: KindValidation, Message: msg, Details: details}
}

// NotFound is a 404. What is the thing not found ("dataset").
func NotFound(what string) *Error { return newf(KindNotFound, "%s not found", what) }

// Conflict is a 409 with the reason.
func Conflict(format string, a ...any) *Error { return newf(KindConflict, format, a...) }

// Forbidden is a 403.
func Forbidden(format string, a ...any) *Error { return newf(KindForbidden, format, a...) }

// Unauthorized is a 401.
func Unauthorized(format string, a ...any) *Error { return newf(KindUnauthorized, format, a...) }

// TooLarge is a 413.
func TooLarge(format string, a ...any) *Error { return newf(KindTooLarge, format, a...) }

// RateLimited is a 429.
func RateLimited(format string, a ...any) *Error { return newf(KindRateLimited, format, a...) }

// Unavailable is a 503: the work cannot be done now (no agent can serve it).
func Unavailable(format string, a ...any) *Error { return newf(KindUnavailable, format, a...) }

// WithCode sets the machine-readable code and returns e.
func (e *Error) WithCode(code string) *Error {
	e.Code = code
	return e
}

// BadRequest is a 400 without field details.
func BadRequest(format string, a ...any) *Error { return newf(KindValidation, format, a...) }

// UnsupportedMedia is a 415.
func UnsupportedMedia(format string, a ...any) *Error {
	return newf(KindUnsupportedMedia, format, a...)
}

// FieldErrors collects per-field validation problems in order.
type FieldErrors map[string]string

// Add records a problem with field (first one wins).
func (f FieldErrors) Add(field, problem string) {
	if _, ok := f[field]; !ok {
		f[field] = problem
	}
}

// Err returns a validation error when any field failed, else nil.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return Validation("validation failed", map[string]string(f))
}

// Name trims *v and checks it has 1 to 200 characters (nil = not sent).
func (f FieldErrors) Name(field string, v *string) {
	if v == nil {
		return
	}
	*v = strings.TrimSpace(*v)
	if n := utf8.RuneCountInString(*v); n < 1 || n > 200 {
		f.Add(field, "use 1 to 200 characters")
	}
}

// MaxRunes checks *v has at most max characters (nil = not sent).
func (f FieldErrors) MaxRunes(field string, v *string, max int) {
	if v != nil && utf8.RuneCountInString(*v) > max {
		f.Add(field, fmt.Sprintf("use at most %d characters", max))
	}
}
