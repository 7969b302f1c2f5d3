package httpx

import (
	"math"
	"net/url"
	"strconv"

	"github.com/brightrun/brightrun/internal/apperr"
)

// Paging reads ?page (from 1) and ?limit (1–100, default def), recording
// problems in f.
func Paging(q url.Values, def int, f apperr.FieldErrors) (page, limit int) {
	page, limit = 1, def
	if v := q.Get("page"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1_000_000 {
			f.Add("page", "use a whole number from 1")
		} else {
			page = n
		}
	}
	if v := q.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 100 {
			f.Add("limit", "use a whole number from 1 to 100")
		} else {
			limit = n
		}
	}
	return page, limit
}

// TotalPages is the page count for total items.
func TotalPages(total, limit int) int {
	return int(math.Ceil(float64(total) / float64(limit)))
}
