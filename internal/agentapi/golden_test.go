package agentapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"

	. "github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/agentwork"
	"github.com/brightrun/brightrun/internal/inference"
)

// goldenProtocol holds one example body of every agent-protocol call. The
// trainer's test server takes its allowed fields from the same file
// (trainer/tests/fakeserver.py), so the Go wire types and the Python agent
// are checked against one definition.
const goldenProtocol = "../../testdata/golden/agent-protocol.json"

func TestAgentProtocolGolden(t *testing.T) {
	raw, err := os.ReadFile(goldenProtocol)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	delete(all, "_comment")
	type example struct {
		Request  json.RawMessage `json:"request"`
		Response json.RawMessage `json:"response"`
	}
	golden := map[string]example{}
	for call, b := range all {
		var e example
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		golden[call] = e
	}
	types := map[string][2]any{
		"claim":      {&ClaimRequest{}, &ClaimAnswer{}},
		"heartbeat":  {&HeartbeatRequest{}, &HeartbeatAnswer{}},
		"metrics":    {&MetricsRequest{}, nil},
		"events":     {&EventsRequest{}, nil},
		"uploads":    {&UploadRequest{}, nil},
		"checkpoint": {&CheckpointRequest{}, nil},
		"complete":   {&CompleteRequest{}, nil},
		"fail":       {&FailRequest{}, nil},
		"cancelled":  {&CancelledRequest{}, nil},
		// The inference calls (internal/inference serves them).
		"inference_claim":  {&inference.ClaimRequest{}, &inference.ClaimAnswer{}},
		"inference_stream": {&inference.StreamPost{}, &inference.StreamAnswer{}},
		// Agent work (internal/agentwork serves it).
		"work_claim":    {&agentwork.ClaimRequest{}, &agentwork.ClaimAnswer{}},
		"work_complete": {&agentwork.CompleteRequest{}, &agentwork.DoneAnswer{}},
		"work_fail":     {&agentwork.FailRequest{}, &agentwork.DoneAnswer{}},
		// Exports (agent work of kind "export").
		"work_claim_export":    {&agentwork.ClaimRequest{}, &agentwork.ClaimAnswer{}},
		"work_upload":          {&agentwork.UploadRequest{}, &agentwork.UploadAnswer{}},
		"work_complete_export": {&agentwork.CompleteRequest{}, &agentwork.DoneAnswer{}},
	}
	for call := range golden {
		if _, ok := types[call]; !ok {
			t.Errorf("golden call %q has no Go wire type here: add it", call)
		}
	}
	for call, tt := range types {
		g, ok := golden[call]
		if !ok {
			t.Errorf("no golden example for %q", call)
			continue
		}
		for i, v := range tt {
			body := []json.RawMessage{g.Request, g.Response}[i]
			if v == nil {
				continue
			}
			if len(body) == 0 {
				t.Errorf("%s: golden lacks the %s", call, []string{"request", "response"}[i])
				continue
			}
			sameFields(t, call, body, v)
		}
	}
}

// sameFields decodes body into v refusing unknown fields (every golden field
// is a Go field) and re-encodes it: every Go field is in the golden example.
func sameFields(t *testing.T, call string, body json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s: golden example does not decode into %T: %v", call, v, err)
		return
	}
	again, _ := json.Marshal(v)
	var want, got any
	_ = json.Unmarshal(body, &want)
	_ = json.Unmarshal(again, &got)
	if missing := missingKeys(got, want, call); len(missing) > 0 {
		t.Errorf("%T has fields the golden example lacks: %v", v, missing)
	}
}

// missingKeys lists the object keys of got (recursively) that want lacks.
// Free-form maps (config, summary, samples) are compared by their keys too.
func missingKeys(got, want any, path string) []string {
	var out []string
	switch g := got.(type) {
	case map[string]any:
		w, _ := want.(map[string]any)
		for k, v := range g {
			wv, ok := w[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, missingKeys(v, wv, path+"."+k)...)
		}
	case []any:
		w, _ := want.([]any)
		for i := range min(len(g), len(w)) {
			out = append(out, missingKeys(g[i], w[i], path+"[]")...)
		}
	}
	slices.Sort(out)
	return out
}
