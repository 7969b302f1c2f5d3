package training

import (
	"fmt"

	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/dustin/go-humanize"
)

// Preflight says what a max_seq_length does to a dataset before a job runs:
// how many examples the trainer keeps whole, shortens or drops (an example
// whose target does not survive truncation is dropped), what is left of the
// validation split, and the tokens one epoch trains on.
//
// Exact is true when the counts come from an agent's preflight (the base
// model's tokenizer and chat template, the trainer's own encoding; see
// internal/agentwork), false when they come from the validator's
// per-example token estimates (bytes/4 plus a per-message overhead;
// docs/estimates.md). ExactStatus says, while Exact is false, where the
// exact preflight is: "queued", "running" or "failed" ("" when none could be
// queued).
type Preflight struct {
	Exact                   bool   `json:"exact"`
	ExactStatus             string `json:"exact_status,omitempty"`
	MaxSeqLength            int    `json:"max_seq_length"`
	ExamplesTotal           int    `json:"examples_total"`
	ExamplesKept            int    `json:"examples_kept"`      // trained or evaluated on (whole or shortened)
	ExamplesTruncated       int    `json:"examples_truncated"` // kept but shortened
	ExamplesDropped         int    `json:"examples_dropped"`   // nothing of the target left
	TrainingExamplesKept    int    `json:"training_examples_kept"`
	ValidationExamplesTotal int    `json:"validation_examples_total"`
	ValidationExamplesKept  int    `json:"validation_examples_kept"`
	TokensPerEpoch          int64  `json:"tokens_per_epoch"`           // training split, after truncation
	AssistantTokensPerEpoch int64  `json:"assistant_tokens_per_epoch"` // of which trained on (targets)
	ValidationTokens        int64  `json:"validation_tokens"`
	// KeepAllMaxSeqLength is the smallest max_seq_length (a multiple of 64)
	// that keeps every example whole; KeepAllWithinModel says whether the
	// base model's context allows it.
	KeepAllMaxSeqLength int  `json:"keep_all_max_seq_length"`
	KeepAllWithinModel  bool `json:"keep_all_within_model"`
	// Message says it in words for the configure page ("" when nothing is
	// shortened or dropped).
	Message string `json:"message"`
}

// preflightFrom computes the preflight of a token profile (nil when the
// dataset has none: validated before profiles were stored); exact says the
// profile counts real tokens (an agent's preflight).
func preflightFrom(prof *validate.TokenProfile, maxSeq, contextLength int, exact bool) *Preflight {
	if prof == nil || len(prof.Rows) == 0 {
		return nil
	}
	scale := float64(prof.Examples) / float64(len(prof.Rows))
	L := int32(maxSeq)
	var kept, trunc, drop, trainKept, valTotal, valKept float64
	var tokens, asst, valTokens float64
	var longest int32
	for _, r := range prof.Rows {
		total, prompt, target, val := r[0], r[1], r[2], r[3] == 1
		longest = max(longest, total)
		if val {
			valTotal++
		}
		t, a := total, target
		if total > L {
			trunc++
			// The trainer first drops the oldest history turns, then cuts
			// the end: the target survives whole if prompt+target fits,
			// partly if the prompt alone fits, not at all otherwise.
			t = L
			if prompt+target > L {
				a = L - prompt
			}
		}
		if a <= 0 {
			drop++
			continue
		}
		kept++
		if val {
			valKept++
			valTokens += float64(t)
			continue
		}
		trainKept++
		tokens += float64(t)
		asst += float64(a)
	}
	n := func(x float64) int { return int(x*scale + 0.5) }
	p := &Preflight{Exact: exact, MaxSeqLength: maxSeq, ExamplesTotal: prof.Examples, ExamplesKept: n(kept), ExamplesTruncated: n(trunc - drop),
		ExamplesDropped: n(drop), TrainingExamplesKept: n(trainKept), ValidationExamplesTotal: n(valTotal), ValidationExamplesKept: n(valKept),
		TokensPerEpoch: int64(tokens * scale), AssistantTokensPerEpoch: int64(asst * scale), ValidationTokens: int64(valTokens * scale)}
	p.KeepAllMaxSeqLength = (int(longest) + 63) / 64 * 64
	p.KeepAllWithinModel = contextLength <= 0 || p.KeepAllMaxSeqLength <= contextLength
	p.Message = p.words()
	return p
}

// words is the configure page's warning, e.g. "256 tokens drops 29 of 44
// examples and leaves no validation split; 2048 keeps all".
func (p *Preflight) words() string {
	if p.ExamplesDropped == 0 && p.ExamplesTruncated == 0 {
		return ""
	}
	s := fmt.Sprintf("%s tokens", humanize.Comma(int64(p.MaxSeqLength)))
	switch {
	case p.ExamplesDropped > 0 && p.ExamplesTruncated > 0:
		s += fmt.Sprintf(" drops %d of %d examples and shortens %d more", p.ExamplesDropped, p.ExamplesTotal, p.ExamplesTruncated)
	case p.ExamplesDropped > 0:
		s += fmt.Sprintf(" drops %d of %d examples", p.ExamplesDropped, p.ExamplesTotal)
	default:
		s += fmt.Sprintf(" shortens %d of %d examples (oldest turns first, then the end of the answer)", p.ExamplesTruncated, p.ExamplesTotal)
	}
	switch {
	case p.ValidationExamplesTotal > 0 && p.ValidationExamplesKept == 0:
		s += " and leaves no validation split (no quality rating)"
	case p.ValidationExamplesKept < p.ValidationExamplesTotal:
		s += fmt.Sprintf(" and leaves %d of %d validation examples", p.ValidationExamplesKept, p.ValidationExamplesTotal)
	}
	if p.KeepAllWithinModel {
		s += fmt.Sprintf("; %s keeps all", humanize.Comma(int64(p.KeepAllMaxSeqLength)))
	} else {
		s += fmt.Sprintf("; the longest example needs %s tokens, more than the model's context", humanize.Comma(int64(p.KeepAllMaxSeqLength)))
	}
	if !p.Exact {
		s += " (estimated)"
	}
	return s
}
