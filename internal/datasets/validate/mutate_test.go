package validate

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/synth"
)

// TestMutatedInputs is a deterministic complement to FuzzValidate: a few
// thousand randomly damaged synthetic files of each format must never
// panic, fail, or give inconsistent counts.
func TestMutatedInputs(t *testing.T) {
	var seeds [][]byte
	for _, fm := range []synth.Format{synth.V4JSON, synth.V4JSONL, synth.OpenAIChat} {
		var b bytes.Buffer
		synth.Write(&b, synth.Options{Format: fm, Conversations: 2, MinExchanges: 1, MaxExchanges: 2})
		seeds = append(seeds, b.Bytes())
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for it := 0; it < n; it++ {
		d := append([]byte(nil), seeds[it%len(seeds)]...)
		for k := 0; k < 1+r.IntN(4) && len(d) > 0; k++ {
			i := r.IntN(len(d))
			switch r.IntN(4) {
			case 0:
				d[i] = byte(r.IntN(256))
			case 1:
				d = d[:i]
			case 2:
				d = append(d[:i], d[min(len(d), i+1+r.IntN(50)):]...)
			case 3:
				d = append(d[:i], append([]byte(`,"x":[{`), d[i:]...)...)
			}
		}
		res, err := Validate(context.Background(), bytes.NewReader(d), Options{MaxLineBytes: 1 << 12})
		if err != nil {
			t.Fatalf("input %d: %v", it, err)
		}
		st := res.Stats
		if st.TrainingPairs+st.ValidationPairs != st.TrainablePairs || st.TrainablePairs+st.SkippedPairs+st.InvalidPairs != st.TotalPairs {
			t.Fatalf("input %d: inconsistent stats %+v", it, st)
		}
	}
}
