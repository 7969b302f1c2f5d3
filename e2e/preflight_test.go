package e2e

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

type preflightView struct {
	Exact                   bool   `json:"exact"`
	MaxSeqLength            int    `json:"max_seq_length"`
	ExamplesTotal           int    `json:"examples_total"`
	ExamplesKept            int    `json:"examples_kept"`
	ExamplesTruncated       int    `json:"examples_truncated"`
	ExamplesDropped         int    `json:"examples_dropped"`
	ValidationExamplesTotal int    `json:"validation_examples_total"`
	ValidationExamplesKept  int    `json:"validation_examples_kept"`
	TokensPerEpoch          int64  `json:"tokens_per_epoch"`
	AssistantTokensPerEpoch int64  `json:"assistant_tokens_per_epoch"`
	KeepAllMaxSeqLength     int    `json:"keep_all_max_seq_length"`
	Message                 string `json:"message"`
}

// TestPreflightTruncation: a max_seq_length far below EQ-12's examples
// (p50 ≈ 1,400 tokens) is reported by the estimate (dropped, shortened,
// validation split), and POST /api/jobs refuses it until allow_truncation
// is sent; a length that keeps all examples needs no consent.
func TestPreflightTruncation(t *testing.T) {
	for _, eng := range testdb.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			s := testserver.Start(t, eng, testserver.Options{})
			c := s.SignUp(t, "pre@example.com")
			ds := readyDataset(t, c)
			var est struct {
				estimateView
				Preflight *preflightView `json:"preflight"`
			}
			short := jobReq(ds, smol, "cpu", 1, func(h map[string]any) { h["max_seq_length"] = 256 })
			c.MustJSON("POST", "/api/jobs/estimate", short, 200, &est)
			p := est.Preflight
			if p == nil || p.Exact || p.ExamplesTotal != 44 || p.ExamplesDropped == 0 || p.ExamplesKept+p.ExamplesDropped != 44 {
				t.Fatalf("preflight at 256: %+v", p)
			}
			if p.ValidationExamplesKept >= p.ValidationExamplesTotal || p.KeepAllMaxSeqLength <= 256 || p.KeepAllMaxSeqLength%64 != 0 {
				t.Fatalf("preflight at 256: %+v", p)
			}
			if !strings.HasPrefix(p.Message, "256 tokens drops ") || !strings.Contains(p.Message, " keeps all") {
				t.Fatalf("message: %q", p.Message)
			}
			failed := false
			for _, ch := range est.Checklist {
				if ch.ID == "examples_kept" && !ch.OK && strings.HasPrefix(ch.Message, "Drops ") {
					failed = true
				}
			}
			if !failed {
				t.Fatalf("checklist does not warn: %+v", est.Checklist)
			}
			// Without consent: a 400 naming allow_truncation.
			r := c.Do("POST", "/api/jobs", short)
			if _, det := r.ErrorBody(); r.Status != 400 || det["allow_truncation"] == nil {
				t.Fatalf("job that drops examples without consent: %d %s", r.Status, r.Body)
			}
			// With consent it is queued.
			short["allow_truncation"] = true
			c.MustJSON("POST", "/api/jobs", short, 201, nil)

			// At the suggested length nothing is shortened or dropped, and the
			// estimate trains on more tokens.
			var all struct {
				estimateView
				Preflight *preflightView `json:"preflight"`
			}
			c.MustJSON("POST", "/api/jobs/estimate", jobReq(ds, smol, "cpu", 1, func(h map[string]any) { h["max_seq_length"] = p.KeepAllMaxSeqLength }), 200, &all)
			q := all.Preflight
			if q.ExamplesDropped != 0 || q.ExamplesTruncated != 0 || q.ExamplesKept != 44 || q.Message != "" || q.TokensPerEpoch <= p.TokensPerEpoch ||
				q.AssistantTokensPerEpoch <= 0 || q.AssistantTokensPerEpoch >= q.TokensPerEpoch || all.TokensUsed <= est.TokensUsed {
				t.Fatalf("preflight at %d: %+v (tokens %d vs %d)", p.KeepAllMaxSeqLength, q, all.TokensUsed, est.TokensUsed)
			}
			// That length fits the 16 GB local CPU only with gradient
			// checkpointing (the CPU memory model: one example per forward).
			c.MustJSON("POST", "/api/jobs", jobReq(ds, smol, "cpu", 1, func(h map[string]any) {
				h["max_seq_length"] = p.KeepAllMaxSeqLength
				h["gradient_checkpointing"] = true
			}), 201, nil)
		})
	}
}
