package validate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/synth"
)

func FuzzValidate(f *testing.F) {
	for _, fm := range []synth.Format{synth.V4JSON, synth.V4JSONL, synth.OpenAIChat} {
		var b bytes.Buffer
		synth.Write(&b, synth.Options{Format: fm, Conversations: 1, MinExchanges: 1, MaxExchanges: 1})
		f.Add(b.Bytes())
	}
	f.Add([]byte(jsonl(append([]string{header}, validPairs()...)...)))
	f.Add([]byte(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`))
	f.Add([]byte("\xEF\xBB\xBF{\"_meta\":{}}\r\n{\"target_response\":1}\n\xff"))
	f.Add([]byte(`{"conversations":[{"training_pairs":[{"target_response":"x"}]}]}`))
	if dir := os.Getenv("BRIGHTRUN_DATASETS_DIR"); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "eq-12-conversations.v4.jsonl")); err == nil {
			f.Add(b[:min(len(b), 20000)])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Validate(context.Background(), bytes.NewReader(data), Options{MaxLineBytes: 1 << 12, SampleSize: 2})
		if err != nil {
			t.Fatalf("error for in-memory input: %v", err)
		}
		st := res.Stats
		if st.TrainingPairs+st.ValidationPairs != st.TrainablePairs || st.TrainablePairs+st.SkippedPairs+st.InvalidPairs != st.TotalPairs {
			t.Fatalf("inconsistent stats %+v", st)
		}
		if len(res.Errors) > 100 || res.ErrorCount < len(res.Errors) || res.BytesRead > int64(len(data)) {
			t.Fatalf("issue counts %d/%d bytes %d", len(res.Errors), res.ErrorCount, res.BytesRead)
		}
		if res.TrainingReady != (res.ErrorCount == 0 && st.TrainablePairs > 0) {
			t.Fatal("TrainingReady inconsistent")
		}
		for _, ex := range res.Sample {
			if len(ex.Messages) < 2 || ex.Messages[len(ex.Messages)-1].Role != "assistant" {
				t.Fatalf("bad sample %+v", ex)
			}
		}
	})
}
