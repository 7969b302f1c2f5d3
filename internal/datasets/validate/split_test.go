package validate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/synth"
)

func TestValidationCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		p    float64
		want int
	}{{0, 0.1, 0}, {1, 0.1, 0}, {2, 0.1, 1}, {12, 0.1, 1}, {14, 0.1, 1}, {15, 0.1, 2}, {25, 0.1, 3}, {100, 0.1, 10}, {10, 0.5, 5}, {3, 1, 2}, {10, -1, 0}} {
		if got := validationCount(c.n, c.p); got != c.want {
			t.Errorf("validationCount(%d, %v) = %d, want %d", c.n, c.p, got, c.want)
		}
	}
}

func TestValidationSplitRule(t *testing.T) {
	var keys []string
	for i := 0; i < 40; i++ {
		keys = append(keys, fmt.Sprintf("conv-%d", i))
	}
	got := ValidationSplit(append(keys, keys[:5]...), 0.10) // duplicates count once
	type kd struct{ k, d string }
	var all []kd
	for _, k := range keys {
		s := sha256.Sum256([]byte(k))
		all = append(all, kd{k, hex.EncodeToString(s[:])})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d < all[j].d })
	want := map[string]bool{}
	for _, e := range all[:4] {
		want[e.k] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("split = %v, want %v", got, want)
	}
}

func TestEstimateTokens(t *testing.T) {
	for s, want := range map[string]int{"": 0, "a": 1, "abcd": 1, "abcde": 2, "héllo": 2} {
		if got := EstimateTokens(s); got != want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h tokenHist
	for v := 1; v <= 100; v++ {
		h.add(v)
	}
	if h.percentile(0.5) != 50 || h.percentile(0.95) != 95 || h.percentile(1) != 100 {
		t.Errorf("p50 %d p95 %d p100 %d", h.percentile(0.5), h.percentile(0.95), h.percentile(1))
	}
	for _, v := range []int{2047, 2048, 5000, 123456, 1 << 30} {
		got := histValue(histIndex(v))
		if got > v || float64(v-got) > float64(v)/1000 {
			t.Errorf("bucket of %d = %d", v, got)
		}
	}
}

func gen(t *testing.T, o synth.Options) ([]byte, synth.Summary) {
	var b bytes.Buffer
	sum, err := synth.Write(&b, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Bytes != int64(b.Len()) {
		t.Fatalf("summary bytes %d != %d", sum.Bytes, b.Len())
	}
	return b.Bytes(), sum
}

// The JSON document and JSONL forms of the same synthetic conversations
// give the same trainable pairs, split, statistics and samples; OpenAI
// JSONL of the same conversations gives the same number of conversations.
func TestSyntheticFormsAgree(t *testing.T) {
	results := map[synth.Format]*Result{}
	for _, f := range []synth.Format{synth.V4JSON, synth.V4JSONL, synth.OpenAIChat} {
		data, sum := gen(t, synth.Options{Format: f, Conversations: 57, Seed: 3})
		again, _ := gen(t, synth.Options{Format: f, Conversations: 57, Seed: 3})
		if !bytes.Equal(data, again) {
			t.Fatalf("%s: generator not deterministic", f)
		}
		res, err := Validate(context.Background(), bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ErrorCount != 0 || !res.TrainingReady || res.Format != string(f) {
			t.Fatalf("%s: %s errors %+v", f, res.Format, res.Errors)
		}
		for _, w := range res.Warnings {
			if w.Code == WarnHeaderCountMismatch {
				t.Errorf("%s: %+v", f, w)
			}
		}
		if res.Stats.TotalPairs != sum.Pairs || res.Stats.TrainablePairs != sum.TrainablePairs || res.Stats.Conversations != 57 {
			t.Errorf("%s: stats %+v vs summary %+v", f, res.Stats, sum)
		}
		results[f] = res
	}
	a, b := results[synth.V4JSON], results[synth.V4JSONL]
	sa, sb := a.Stats, b.Stats
	sa.TotalPairs, sa.SkippedPairs = sb.TotalPairs, sb.SkippedPairs // the document form also holds the user turns
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("JSON vs JSONL stats differ:\n%+v\n%+v", a.Stats, b.Stats)
	}
	if !reflect.DeepEqual(a.Sample, b.Sample) {
		t.Error("JSON vs JSONL samples differ")
	}
	if len(a.Stats.ValidationConversationKeys) != 6 {
		t.Errorf("k = %d, want 6", len(a.Stats.ValidationConversationKeys))
	}
	o := results[synth.OpenAIChat]
	// Same examples (the last of each conversation is the OpenAI line).
	if o.Stats.TokensMax != a.Stats.TokensMax || o.Stats.AvgTurnsPerConversation != a.Stats.AvgTurnsPerConversation {
		t.Errorf("OpenAI max tokens/turns %d %v vs %d %v", o.Stats.TokensMax, o.Stats.AvgTurnsPerConversation, a.Stats.TokensMax, a.Stats.AvgTurnsPerConversation)
	}
	for _, k := range o.Stats.ValidationConversationKeys {
		if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" {
			t.Errorf("OpenAI key %q is not a hex SHA-256", k)
		}
	}
}

func TestSyntheticTargetSize(t *testing.T) {
	for _, f := range []synth.Format{synth.V4JSON, synth.V4JSONL, synth.OpenAIChat} {
		data, sum := gen(t, synth.Options{Format: f, TargetBytes: 3 << 20, Seed: 1, HeaderQuirk: true})
		if len(data) < 3<<20 || len(data) > 3<<20+200<<10 {
			t.Errorf("%s: %d bytes for a 3 MiB target", f, len(data))
		}
		res, err := Validate(context.Background(), bytes.NewReader(data), Options{})
		if err != nil || res.ErrorCount != 0 || res.Stats.TrainablePairs != sum.TrainablePairs {
			t.Errorf("%s: %v %+v %+v", f, err, res.Errors, sum)
		}
	}
}
