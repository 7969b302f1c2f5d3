package httpx

import (
	"net/http"
	"slices"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
)

// IsOpenAI reports whether r is for the OpenAI-compatible face (/v1), whose
// errors take OpenAI's shape so existing clients show them.
func IsOpenAI(r *http.Request) bool {
	return r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/")
}

// OpenAIErrorBody is OpenAI's error envelope: {"error": {...}}.
type OpenAIErrorBody struct {
	Error OpenAIError `json:"error"`
}

// OpenAIError is OpenAI's error object.
type OpenAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// openAIError words ae as OpenAI does: the type from the status, param from
// the first field of a validation error's details, code from ae.Code.
func openAIError(ae *apperr.Error, status int) OpenAIError {
	oe := OpenAIError{Message: ae.Message, Type: openAIType(status)}
	fields, _ := ae.Details.(map[string]string)
	if f, ok := ae.Details.(apperr.FieldErrors); ok {
		fields = f
	}
	if len(fields) > 0 {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		p := keys[0]
		oe.Param = &p
		// OpenAI's messages name the parameter; ours say what to do.
		oe.Message = p + ": " + fields[p]
		if len(fields) > 1 {
			oe.Message += " (and " + strings.Join(keys[1:], ", ") + ")"
		}
	}
	if ae.Code != "" {
		c := ae.Code
		oe.Code = &c
	}
	return oe
}

func openAIType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "invalid_request_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, http.StatusInternalServerError:
		return "server_error"
	}
	return "invalid_request_error"
}
