package openai

import (
	"encoding/json"
	"testing"

	"github.com/brightrun/brightrun/internal/apperr"
)

func parse(t *testing.T, body string) (chatRequest, error) {
	t.Helper()
	var r chatRequest
	err := json.Unmarshal([]byte(body), &r)
	return r, err
}

func TestChatParams(t *testing.T) {
	r, err := parse(t, `{"model":"m","stop":"END","max_completion_tokens":9,"seed":3,
		"messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	msgs, p, err := r.params()
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Role != "system" || msgs[1].Content != "ab" || p.MaxTokens != 9 || len(p.Stop) != 1 || p.Stop[0] != "END" ||
		p.Temperature != 1 || p.TopP != 1 || p.Seed == nil || *p.Seed != 3 {
		t.Fatalf("%+v %+v", msgs, p)
	}
	r, _ = parse(t, `{"model":"m","stop":["a","b"],"messages":[{"role":"user","content":"x"}]}`)
	if _, p, err := r.params(); err != nil || len(p.Stop) != 2 || p.MaxTokens != 256 {
		t.Fatalf("stop list / default max tokens: %v %+v", err, p)
	}
}

func TestChatParamsRefusals(t *testing.T) {
	for _, c := range []struct{ body, field string }{
		{`{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}`, "n"},
		{`{"model":"m","max_tokens":5,"max_completion_tokens":6,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{`{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{`{"model":"m","top_p":0,"messages":[{"role":"user","content":"x"}]}`, "top_p"},
		{`{"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`, "stream_options"},
		{`{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}`, "messages"},
		{`{"model":"m","messages":[]}`, "messages"},
		{`{"model":"","messages":[{"role":"user","content":"x"}]}`, "model"},
		{`{"model":"m","stop":["a","b","c","d","e"],"messages":[{"role":"user","content":"x"}]}`, "stop"},
	} {
		r, err := parse(t, c.body)
		if err == nil {
			_, _, err = r.params()
		}
		ae, ok := apperr.As(err)
		if !ok || ae.Kind != apperr.KindValidation {
			t.Errorf("%s: want a 400, got %v", c.body, err)
			continue
		}
		if fields, _ := ae.Details.(map[string]string); fields[c.field] == "" {
			t.Errorf("%s: want field %s named, got %v", c.body, c.field, ae.Details)
		}
	}
	// Content parts other than text, and a stop that is neither string nor list.
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"model":"m","stop":3,"messages":[{"role":"user","content":"x"}]}`,
	} {
		if _, err := parse(t, body); err == nil {
			t.Errorf("%s: accepted", body)
		}
	}
}
