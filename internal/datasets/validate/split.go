package validate

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"sort"
)

// ValidationSplit returns the set of conversation keys that go to the
// validation split. The rule (implemented identically by the trainer):
//
//   - duplicate keys count once; n is the number of distinct keys;
//   - k = 0 if n < 2 or share <= 0; otherwise
//     k = min(n-1, max(1, floor(share*n + 0.5)));
//   - the k keys whose lowercase hex SHA-256 digests (of the key's UTF-8
//     bytes) sort first (byte-wise ascending; ties broken by the key itself)
//     are the validation conversations.
func ValidationSplit(keys []string, share float64) map[string]bool {
	uniq := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		uniq[k] = struct{}{}
	}
	n := len(uniq)
	k := validationCount(n, share)
	out := make(map[string]bool, k)
	if k == 0 {
		return out
	}
	type kd struct {
		key, digest string
	}
	all := make([]kd, 0, n)
	for key := range uniq {
		sum := sha256.Sum256([]byte(key))
		all = append(all, kd{key, hex.EncodeToString(sum[:])})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].digest != all[j].digest {
			return all[i].digest < all[j].digest
		}
		return all[i].key < all[j].key
	})
	for _, e := range all[:k] {
		out[e.key] = true
	}
	return out
}

// validationCount is k of the split rule for n conversations.
func validationCount(n int, share float64) int {
	if n < 2 || share <= 0 || math.IsNaN(share) {
		return 0
	}
	k := int(math.Floor(share*float64(n) + 0.5))
	if k < 1 {
		k = 1
	}
	if k > n-1 {
		k = n - 1
	}
	return k
}

// EstimateTokens is the documented token estimate used for statistics:
// ceil(len(s)/4) where len is the number of UTF-8 bytes. (English text
// averages about 4 bytes per token; CJK text about 3 bytes per character and
// one token per character or two, so bytes/4 stays in the right range.)
// Exact counts come later from the model's tokenizer in the trainer.
func EstimateTokens(s string) int { return estimateLen(len(s)) }

func estimateLen(n int) int { return (n + 3) / 4 }

// messageOverheadTokens is added per message of an example for the chat
// template's role markers.
const messageOverheadTokens = 4
