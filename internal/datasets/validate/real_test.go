package validate

import (
	"context"
	"encoding/json"
	"github.com/brightrun/brightrun/internal/testdata"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// dataDir is the real datasets folder (see internal/testdata).
func dataDir(t testing.TB) string { return testdata.Dir(t) }

func validateFile(t *testing.T, path string) *Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Validate(context.Background(), f, Options{})
	if err != nil {
		t.Fatalf("Validate(%s): %v", path, err)
	}
	if testing.Verbose() {
		cp := *res
		cp.Sample = nil
		b, _ := json.MarshalIndent(cp, "", "  ")
		t.Logf("%s:\n%s", filepath.Base(path), b)
	}
	return res
}

func TestRealFiles(t *testing.T) {
	dir := dataDir(t)
	cases := []struct {
		file                           string
		format                         string
		convs, pairs, trainable, skips int
		mismatchWarnings               int
	}{
		{"eq-12-conversations.v4.json", FormatV4JSON, 12, 89, 44, 45, 0},
		{"eq-12-conversations.v4.jsonl", FormatV4JSONL, 12, 44, 44, 0, 1},
		{"eq-18-conversations.v4.json", FormatV4JSON, 18, 128, 62, 66, 0},
	}
	results := map[string]*Result{}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			res := validateFile(t, filepath.Join(dir, c.file))
			results[c.file] = res
			st := res.Stats
			if res.Format != c.format {
				t.Errorf("format = %q, want %q", res.Format, c.format)
			}
			if res.ErrorCount != 0 {
				t.Errorf("errors: %+v", res.Errors)
			}
			if !res.TrainingReady {
				t.Error("not training ready")
			}
			if st.Conversations != c.convs || st.TotalConversations != c.convs {
				t.Errorf("conversations = %d/%d, want %d", st.Conversations, st.TotalConversations, c.convs)
			}
			if st.TotalPairs != c.pairs || st.TrainablePairs != c.trainable || st.SkippedPairs != c.skips {
				t.Errorf("pairs total/trainable/skipped = %d/%d/%d, want %d/%d/%d", st.TotalPairs, st.TrainablePairs, st.SkippedPairs, c.pairs, c.trainable, c.skips)
			}
			if st.TrainingPairs+st.ValidationPairs != st.TrainablePairs || st.ValidationPairs == 0 {
				t.Errorf("split %d + %d != %d", st.TrainingPairs, st.ValidationPairs, st.TrainablePairs)
			}
			wantK := validationCount(c.convs, 0.10)
			if len(st.ValidationConversationKeys) != wantK {
				t.Errorf("validation conversations = %d, want %d", len(st.ValidationConversationKeys), wantK)
			}
			n := 0
			for _, w := range res.Warnings {
				if w.Code == WarnHeaderCountMismatch {
					n++
					if w.Line != 1 || w.Field != "_meta.total_pairs" {
						t.Errorf("header warning at %d %q", w.Line, w.Field)
					}
				}
			}
			if n != c.mismatchWarnings {
				t.Errorf("header_count_mismatch warnings = %d, want %d", n, c.mismatchWarnings)
			}
			if len(res.Sample) != 3 {
				t.Fatalf("sample size %d", len(res.Sample))
			}
			for _, ex := range res.Sample {
				checkAlternation(t, ex)
			}
			if st.TokensP50 <= 0 || st.TokensP95 < st.TokensP50 || st.TokensMax < st.TokensP95 || st.TotalTokens <= 0 {
				t.Errorf("token stats %d %d %d %d", st.TokensP50, st.TokensP95, st.TokensMax, st.TotalTokens)
			}
			if len(st.PersonaDistribution) == 0 || len(st.EmotionalArcDistribution) == 0 || len(st.TopicDistribution) == 0 {
				t.Errorf("distributions missing: %v %v %v", st.PersonaDistribution, st.EmotionalArcDistribution, st.TopicDistribution)
			}
		})
	}
	a, b := results["eq-12-conversations.v4.json"], results["eq-12-conversations.v4.jsonl"]
	if a == nil || b == nil {
		return
	}
	if !reflect.DeepEqual(a.Stats.ValidationConversationKeys, b.Stats.ValidationConversationKeys) ||
		a.Stats.ValidationPairs != b.Stats.ValidationPairs || a.Stats.TrainingPairs != b.Stats.TrainingPairs {
		t.Errorf("EQ-12 JSON and JSONL splits differ: %v %d/%d vs %v %d/%d",
			a.Stats.ValidationConversationKeys, a.Stats.TrainingPairs, a.Stats.ValidationPairs,
			b.Stats.ValidationConversationKeys, b.Stats.TrainingPairs, b.Stats.ValidationPairs)
	}
	// Same pairs, same examples: identical token statistics and distributions.
	if a.Stats.TotalTokens != b.Stats.TotalTokens || a.Stats.TokensP95 != b.Stats.TokensP95 || a.Stats.AvgTurnsPerConversation != b.Stats.AvgTurnsPerConversation {
		t.Errorf("EQ-12 token stats differ: %+v vs %+v", a.Stats, b.Stats)
	}
	for _, m := range [][2]map[string]int{{a.Stats.PersonaDistribution, b.Stats.PersonaDistribution}, {a.Stats.EmotionalArcDistribution, b.Stats.EmotionalArcDistribution}, {a.Stats.TopicDistribution, b.Stats.TopicDistribution}} {
		if !reflect.DeepEqual(m[0], m[1]) {
			t.Errorf("distributions differ: %v vs %v", m[0], m[1])
		}
	}
	if !reflect.DeepEqual(a.Sample, b.Sample) {
		t.Errorf("EQ-12 samples differ")
	}
}

// checkAlternation: optional system first, then user/assistant strictly
// alternating, starting with user and ending with assistant.
func checkAlternation(t *testing.T, ex Example) {
	t.Helper()
	msgs := ex.Messages
	if len(msgs) > 0 && msgs[0].Role == "system" {
		msgs = msgs[1:]
	}
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want || m.Content == "" {
			t.Errorf("example %s message %d: role %q (want %q), %d bytes", ex.ConversationKey, i, m.Role, want, len(m.Content))
		}
	}
	if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
		t.Errorf("example %s does not end with assistant", ex.ConversationKey)
	}
}
