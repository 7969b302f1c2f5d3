package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/prometheus/client_golang/prometheus"
)

func TestErrorMapping(t *testing.T) {
	var logs bytes.Buffer
	e := &Errors{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	cases := []struct {
		err    error
		status int
		body   string
	}{
		{apperr.NotFound("dataset"), 404, `"error":"dataset not found"`},
		{apperr.Validation("validation failed", map[string]string{"name": "required"}), 400, `"details":{"name":"required"}`},
		{apperr.Conflict("in use"), 409, "in use"},
		{apperr.TooLarge("big"), 413, "big"},
		{apperr.Unauthorized("who"), 401, "who"},
		{apperr.Forbidden("no"), 403, "no"},
		{apperr.RateLimited("slow"), 429, "slow"},
		{io.ErrUnexpectedEOF, 500, "internal server error (request id"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/api/x", nil)
		e.Write(w, r, c.err)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body)
		}
	}
	if strings.Contains(logs.String(), "unexpected EOF") == false {
		t.Error("internal error not logged")
	}
}

func TestPanicBecomes500WithoutStack(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	e := &Errors{Log: log}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom secret detail") }),
		WithRequestID, Observe(log, NewMetrics(prometheus.NewRegistry()), e))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/p", nil))
	if w.Code != 500 || strings.Contains(w.Body.String(), "boom") || strings.Contains(w.Body.String(), "goroutine") {
		t.Fatalf("panic response: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(w.Body.String(), w.Header().Get("X-Request-ID")) {
		t.Fatal("response lacks the request id")
	}
	if !strings.Contains(logs.String(), "boom secret detail") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatal("panic and stack must be logged")
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	cases := []struct {
		ctype, body string
		kind        apperr.Kind
		msg         string
	}{
		{"application/json", `{"name":"a","count":1}`, -1, ""},
		{"application/json; charset=utf-8", `{"name":"a"}`, -1, ""},
		{"text/plain", `{}`, apperr.KindUnsupportedMedia, "application/json"},
		{"application/json", `{"name":1}`, apperr.KindValidation, `field "name" must be a string`},
		{"application/json", `{"count":"x"}`, apperr.KindValidation, `field "count" must be an integer`},
		{"application/json", `{"nope":1}`, apperr.KindValidation, `unknown field "nope"`},
		{"application/json", `{"name":`, apperr.KindValidation, "ends before"},
		{"application/json", `[1,2]`, apperr.KindValidation, "must be an object"},
		{"application/json", `{} {}`, apperr.KindValidation, "single JSON object"},
		{"application/json", `{"name":"` + strings.Repeat("x", 200) + `"}`, apperr.KindTooLarge, "larger than 100 bytes"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ctype)
		var b body
		err := DecodeJSON(httptest.NewRecorder(), r, &b, 100)
		if c.kind == -1 {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		ae, ok := apperr.As(err)
		if !ok || ae.Kind != c.kind || !strings.Contains(ae.Error(), c.msg) {
			t.Errorf("%.40s: got %v, want kind %d with %q", c.body, err, c.kind, c.msg)
		}
	}
}

func TestDuplicateKey(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": 1, "b": 2}`:                     "",
		`{"a": 1, "a": 2}`:                     "a",
		`{"h": {"x": 1, "y": {"x": 2}}}`:       "",
		`{"h": {"x": 1, "x": 2}}`:              "h.x",
		`{"l": [{"k": 1}, {"k": 1, "k": 2}]}`:  "l[1].k",
		`[{"k": 1}, {"k": 2}]`:                 "",
		`{"a": "x", "b": [1, 2, {"a": true}]}`: "",
		`{"a": `:                               "",
	} {
		if got := DuplicateKey([]byte(in)); got != want {
			t.Errorf("DuplicateKey(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckText(t *testing.T) {
	type inner struct {
		Note string `json:"note"`
	}
	type req struct {
		Name  string          `json:"name"`
		Desc  *string         `json:"description,omitempty"`
		Items []inner         `json:"items"`
		Raw   json.RawMessage `json:"raw"`
	}
	ok := "line one\nline two\ttabbed"
	if err := CheckText(&req{Name: "fine", Desc: &ok, Raw: json.RawMessage(`{"x": "y"}`)}); err != nil {
		t.Fatalf("clean text refused: %v", err)
	}
	for want, r := range map[string]req{
		`"name"`:          {Name: "a\x00b"},
		`"description"`:   {Desc: ptr("bell\a")},
		`"items[1].note"`: {Items: []inner{{"ok"}, {"esc\x1b[2J"}}},
		`"raw.deep"`:      {Raw: json.RawMessage(`{"deep": "nul\u0000"}`)},
	} {
		err := CheckText(&r)
		if err == nil || !strings.Contains(err.Error(), "field "+want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestOpenAIErrorShape(t *testing.T) {
	e := &Errors{Log: slog.New(slog.DiscardHandler)}
	cases := []struct {
		err               error
		status            int
		typ, param, code  string
		messageContaining string
	}{
		{apperr.Validation("validation failed", map[string]string{"model": "is required"}), 400, "invalid_request_error", "model", "", "model: is required"},
		{apperr.NotFound("model").WithCode("model_not_found"), 404, "invalid_request_error", "", "model_not_found", "model not found"},
		{apperr.Unauthorized("send an API token"), 401, "authentication_error", "", "", "API token"},
		{apperr.Unavailable("no agent serving X is online"), 503, "server_error", "", "", "no agent"},
		{apperr.RateLimited("slow down"), 429, "rate_limit_error", "", "", "slow down"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		e.Write(rec, httptest.NewRequest("POST", "/v1/chat/completions", nil), c.err)
		if rec.Code != c.status {
			t.Fatalf("%v: status %d, want %d", c.err, rec.Code, c.status)
		}
		var body struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		got := body.Error
		if got.Type != c.typ || !strings.Contains(got.Message, c.messageContaining) {
			t.Errorf("%v: %+v", c.err, got)
		}
		if (c.param == "") != (got.Param == nil) || got.Param != nil && *got.Param != c.param {
			t.Errorf("%v: param %v, want %q", c.err, got.Param, c.param)
		}
		if (c.code == "") != (got.Code == nil) || got.Code != nil && *got.Code != c.code {
			t.Errorf("%v: code %v, want %q", c.err, got.Code, c.code)
		}
	}
	// /api keeps the spec's envelope.
	rec := httptest.NewRecorder()
	e.Write(rec, httptest.NewRequest("GET", "/api/models/x", nil), apperr.NotFound("model"))
	if !strings.Contains(rec.Body.String(), `"error":"model not found"`) {
		t.Fatalf("api envelope: %s", rec.Body.String())
	}
}
