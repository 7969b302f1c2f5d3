package validate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// The token profile has one row per trainable example, agrees with the
// statistics (totals, split) and holds the parts the trainer's truncation
// keeps (prompt ≤ total, target ≤ total).
func TestTokenProfileRealFile(t *testing.T) {
	for _, f := range []string{"eq-12-conversations.v4.json", "eq-12-conversations.v4.jsonl"} {
		res := validateFile(t, filepath.Join(dataDir(t), f))
		p := res.TokenProfile
		if p.Examples != res.Stats.TrainablePairs || len(p.Rows) != p.Examples {
			t.Fatalf("%s: profile of %d rows from %d examples; %d trainable", f, len(p.Rows), p.Examples, res.Stats.TrainablePairs)
		}
		var total int64
		val := 0
		for i, r := range p.Rows {
			total += int64(r[0])
			val += int(r[3])
			if r[1]+r[2] > r[0] || r[2] <= 0 || r[1] <= 0 {
				t.Fatalf("%s: row %d = %v: prompt+target must be within total", f, i, r)
			}
			if i > 0 && p.Rows[i-1][0] > r[0] {
				t.Fatalf("%s: rows not sorted by total", f)
			}
		}
		if total != res.Stats.TotalTokens {
			t.Fatalf("%s: profile totals %d, statistics %d", f, total, res.Stats.TotalTokens)
		}
		if val != res.Stats.ValidationPairs {
			t.Fatalf("%s: %d validation rows, %d validation pairs", f, val, res.Stats.ValidationPairs)
		}
	}
}

// Past MaxProfileRows the profile is a uniform sample of that size, the
// same for the same input.
func TestTokenProfileSampled(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 500; i++ {
		b.WriteString(`{"messages":[{"role":"user","content":"question ` + strings.Repeat("x", i) + `"},{"role":"assistant","content":"answer"}]}` + "\n")
	}
	run := func() TokenProfile {
		res, err := Validate(context.Background(), strings.NewReader(b.String()), Options{MaxProfileRows: 50})
		if err != nil {
			t.Fatal(err)
		}
		return res.TokenProfile
	}
	p1, p2 := run(), run()
	if p1.Examples != 500 || len(p1.Rows) != 50 {
		t.Fatalf("sampled %d rows of %d examples", len(p1.Rows), p1.Examples)
	}
	for i := range p1.Rows {
		if p1.Rows[i] != p2.Rows[i] {
			t.Fatal("the sample differs between two runs on the same input")
		}
	}
	// A uniform sample spans the range of lengths (1..500 bytes of x).
	if lo, hi := p1.Rows[0][0], p1.Rows[len(p1.Rows)-1][0]; hi-lo < 60 {
		t.Fatalf("sample spans %d..%d tokens only", lo, hi)
	}
}
