package training

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/validate"
)

// TestPreflightRule: the rule over a profile (rows [total, prompt, target,
// validation]): shortened when total > L, dropped when prompt ≥ L (nothing
// of the target left), the target cut to L − prompt when prompt + target > L;
// an exact profile's message carries no "(estimated)".
func TestPreflightRule(t *testing.T) {
	prof := &validate.TokenProfile{Examples: 4, Rows: [][4]int32{
		{100, 20, 50, 0},   // fits
		{300, 50, 100, 0},  // shortened, target whole (150 ≤ 256)
		{400, 200, 150, 0}, // shortened, target cut to 56
		{900, 256, 300, 1}, // dropped: prompt ≥ 256, the validation split's only example
	}}
	for _, exact := range []bool{false, true} {
		p := preflightFrom(prof, 256, 4096, exact)
		if p.Exact != exact || p.ExamplesTotal != 4 || p.ExamplesKept != 3 || p.ExamplesDropped != 1 || p.ExamplesTruncated != 2 ||
			p.TrainingExamplesKept != 3 || p.ValidationExamplesTotal != 1 || p.ValidationExamplesKept != 0 {
			t.Fatalf("exact=%v: %+v", exact, p)
		}
		if p.TokensPerEpoch != 100+256+256 || p.AssistantTokensPerEpoch != 50+100+56 || p.KeepAllMaxSeqLength != 960 || !p.KeepAllWithinModel {
			t.Fatalf("exact=%v tokens: %+v", exact, p)
		}
		want := "256 tokens drops 1 of 4 examples and shortens 2 more and leaves no validation split (no quality rating); 960 keeps all"
		if !exact {
			want += " (estimated)"
		}
		if p.Message != want {
			t.Fatalf("exact=%v message %q, want %q", exact, p.Message, want)
		}
	}
	if p := preflightFrom(prof, 1024, 512, true); p.Message != "" || p.KeepAllWithinModel {
		t.Fatalf("nothing shortened at 1024 but keep-all beyond the context: %+v", p)
	}
	if !strings.Contains(preflightFrom(prof, 256, 512, true).Message, "more than the model's context") {
		t.Fatal("keep-all beyond the context is not said")
	}
}
