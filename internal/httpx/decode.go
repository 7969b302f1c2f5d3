package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
)

// MaxJSONBody is the default limit for JSON request bodies.
const MaxJSONBody = 1 << 20

// DecodeJSON reads one JSON object from r's body into dst: it requires a JSON
// content type, refuses unknown fields, trailing data and bodies over limit
// bytes, and explains what was wrong and where.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	return decodeJSON(w, r, dst, limit, true)
}

// DecodeJSONLoose is DecodeJSON that ignores unknown fields: for the agent
// protocol, where newer agents may send more than this server knows.
func DecodeJSONLoose(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	return decodeJSON(w, r, dst, limit, false)
}

func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, limit int64, strict bool) error {
	if limit <= 0 {
		limit = MaxJSONBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apperr.UnsupportedMedia("send the body as JSON with Content-Type: application/json (got %q)", ct)
		}
	} else {
		return apperr.UnsupportedMedia("send the body as JSON with Content-Type: application/json")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return decodeErr(err, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		return decodeErr(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return apperr.BadRequest("the body must contain a single JSON object")
	}
	if key := DuplicateKey(data); key != "" {
		return apperr.Validation(fmt.Sprintf("field %q appears twice: send each field once", key), map[string]string{key: "appears twice"})
	}
	if strict {
		return CheckText(dst)
	}
	return nil
}

func decodeErr(err error, limit int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &syn):
		return apperr.BadRequest("malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.BadRequest("malformed JSON: the body ends before the object is complete")
	case errors.Is(err, io.EOF):
		return apperr.BadRequest("the request body is empty: send a JSON object")
	case errors.As(err, &typ):
		return apperr.FromJSONField(err, "")
	case errors.As(err, &mbe):
		return apperr.TooLarge("the request body is larger than %d bytes", limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apperr.FromJSONField(err, "")
	}
	return apperr.BadRequest("malformed JSON: %v", err)
}
