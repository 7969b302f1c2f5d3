package validate

import "sort"

// TokenProfile is the per-example token estimate of the trainable examples,
// kept with the dataset so that the configure page and the estimate can say
// what a max_seq_length keeps, truncates and drops before a job runs. Each
// row is [total, prompt, target, validation]: the estimated tokens of the
// whole example, of the part a truncation can never remove before the
// target (system prompt and the latest user message), of the target, and 1
// when the example is in the validation split. Rows are sorted by total.
//
// Memory stays bounded: at most Options.MaxProfileRows rows are kept, a
// uniform sample of the examples (reservoir sampling with a fixed seed, so
// the same file gives the same profile); Examples is the number sampled
// from, and estimates from the rows scale by Examples/len(Rows).
type TokenProfile struct {
	Examples int        `json:"examples"`
	Rows     [][4]int32 `json:"rows"`
}

// profileRow is a row before the split is known (conv is the index of the
// conversation in aggregator.convs).
type profileRow struct {
	total, prompt, target int32
	conv                  int32
}

// profiler keeps a bounded uniform sample of profile rows.
type profiler struct {
	max  int
	seen int
	rows []profileRow
	rng  uint64
}

func (p *profiler) add(r profileRow) {
	p.seen++
	if len(p.rows) < p.max {
		p.rows = append(p.rows, r)
		return
	}
	// Algorithm R with xorshift64: replace a random row with probability max/seen.
	p.rng ^= p.rng << 13
	p.rng ^= p.rng >> 7
	p.rng ^= p.rng << 17
	if j := int(p.rng % uint64(p.seen)); j < p.max {
		p.rows[j] = r
	}
}

func (p *profiler) profile(val func(conv int32) bool) TokenProfile {
	out := TokenProfile{Examples: p.seen, Rows: make([][4]int32, len(p.rows))}
	for i, r := range p.rows {
		v := int32(0)
		if val(r.conv) {
			v = 1
		}
		out.Rows[i] = [4]int32{r.total, r.prompt, r.target, v}
	}
	sort.Slice(out.Rows, func(i, j int) bool {
		a, b := out.Rows[i], out.Rows[j]
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
	return out
}

func clamp32(v int) int32 {
	if v > 1<<31-1 {
		return 1<<31 - 1
	}
	return int32(v)
}
