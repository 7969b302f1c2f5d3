package ui

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/dustin/go-humanize"
)

// humanBytes formats a size in binary units ("82 KiB").
func humanBytes(n int64) string {
	if n < 0 {
		return "—"
	}
	return humanize.IBytes(uint64(n))
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string { return humanize.Comma(n) }

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
