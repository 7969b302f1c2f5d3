package ui

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/store"
)

// humanBytes formats a size in binary units (KiB shown as "KB", as users expect).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// trainable is a dataset's trainable example count, or "—" before validation.
func trainable(d store.Dataset) string {
	if d.TotalTrainingPairs == nil {
		return "—"
	}
	n := *d.TotalTrainingPairs
	if d.TotalValidationPairs != nil {
		n += *d.TotalValidationPairs
	}
	return groupDigits(int64(n))
}

// stars renders a 1–5 rating.
func stars(n int) string {
	if n < 0 {
		n = 0
	}
	if n > 5 {
		n = 5
	}
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

// qnum formats one number of a JSON object (quality metrics), "—" if absent.
func qnum(raw json.RawMessage, key string, digits int) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return "—"
	}
	v, ok := m[key].(float64)
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', digits, 64)
}
