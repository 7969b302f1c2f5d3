package validate

import (
	"math"
	"math/bits"
)

// tokenHist is a bounded log-linear histogram of per-example token counts:
// values below 2048 are counted exactly; larger values fall into buckets of
// 1/1024 relative width (the reported percentile is the bucket's lower bound,
// at most 0.1% below the true value). Its size is fixed (~180 KiB) whatever
// the number of examples.
type tokenHist struct {
	counts []uint64
	n      uint64
}

const histSub = 1024

func histIndex(v int) int {
	if v < 2*histSub {
		return v
	}
	shift := bits.Len(uint(v)) - 11 // v>>shift in [1024, 2047]
	return 2*histSub + (shift-1)*histSub + (v>>shift - histSub)
}

func histValue(i int) int {
	if i < 2*histSub {
		return i
	}
	shift := (i-2*histSub)/histSub + 1
	m := (i-2*histSub)%histSub + histSub
	return m << shift
}

func (h *tokenHist) add(v int) {
	if v < 0 {
		v = 0
	}
	if v > 1<<40 {
		v = 1 << 40
	}
	i := histIndex(v)
	if h.counts == nil {
		h.counts = make([]uint64, 2*histSub+31*histSub)
	}
	h.counts[i]++
	h.n++
}

// percentile returns the nearest-rank percentile q (0 < q <= 1): the smallest
// recorded value v such that at least ceil(q*n) examples have <= v tokens.
func (h *tokenHist) percentile(q float64) int {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var c uint64
	for i, x := range h.counts {
		c += x
		if c >= rank {
			return histValue(i)
		}
	}
	return 0
}
