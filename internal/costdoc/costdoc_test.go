package costdoc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestDetailsRoundTrip: each cost type's document is written alone (the
// public shape, no wrapper) and decodes back by its cost type; none is null;
// an unknown type or a document of the wrong JSON type is an error.
func TestDetailsRoundTrip(t *testing.T) {
	id := "m1"
	for _, d := range []Details{
		{Compute: &Compute{GPUType: "H100-80GB", NumGPUs: 2, Seconds: 90.5, Attempts: 1, RatePerHour: 7.2, Status: "completed"}},
		{Storage: &Storage{Day: "2026-12-03", GB: 1.5, DatasetBytes: 1e9, ArtifactBytes: 5e8, PricePerGBMon: 0.02, AmountExact: 0.001}},
		{Inference: &Inference{Model: "base/model", ModelID: &id, GPUType: "CPU", PromptTokens: 12, CompletionTokens: 3, Source: "playground"}},
	} {
		b, err := json.Marshal(d)
		if err != nil || !strings.HasPrefix(string(b), "{\"") || strings.Contains(string(b), "Compute") {
			t.Fatalf("%s: %s %v", d.Type(), b, err)
		}
		got, err := Decode(d.Type(), b)
		if err != nil || !reflect.DeepEqual(got, d) {
			t.Fatalf("%s: decoded %+v %v", d.Type(), got, err)
		}
	}
	if b, _ := json.Marshal(Details{}); string(b) != "null" {
		t.Fatalf("no details: %s", b)
	}
	if d, err := Decode(TypeCompute, []byte("null")); err != nil || d.Type() != "" {
		t.Fatalf("null: %+v %v", d, err)
	}
	if _, err := Decode("gpu", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), `"gpu"`) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Decode(TypeStorage, []byte(`{"day":1}`)); err == nil {
		t.Fatal("a number for the day decoded")
	}
}
