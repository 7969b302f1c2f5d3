// Package textsafe makes text from outside (users, agents, remote servers)
// safe to store: valid UTF-8, no NUL or other control characters that
// PostgreSQL rejects or that break a page, and cut by runes, never inside a
// character.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ellipsis marks text that Clean cut short.
const Ellipsis = "…"

// Clean returns s as valid UTF-8 (invalid bytes become U+FFFD), without NUL
// and control characters other than tab, newline and carriage return, cut to
// at most max runes (max <= 0: no limit) with an ellipsis when cut.
func Clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexFunc(s, unwanted) >= 0 {
		s = strings.Map(func(r rune) rune {
			if unwanted(r) {
				return -1
			}
			return r
		}, s)
	}
	return Cut(s, max)
}

// Cut cuts valid UTF-8 text s to at most max runes, adding an ellipsis when it
// cut anything (the ellipsis counts towards max).
func Cut(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + Ellipsis
		}
		n++
	}
	return s
}

// Line is Clean for a single-line value (a User-Agent, a title): newlines and
// tabs become spaces as well.
func Line(s string, max int) string {
	s = Clean(s, 0)
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	return Cut(s, max)
}

// Problem says what is wrong with user-entered text s, or "" when it is fine:
// invalid UTF-8, a NUL byte, or a control character (tab, newline and carriage
// return are allowed only when multiline is true).
func Problem(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8 text"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte (\\u0000); remove it"
	}
	bad := strings.IndexFunc(s, func(r rune) bool {
		if r == '\n' || r == '\r' || r == '\t' {
			return !multiline
		}
		return unwanted(r)
	})
	if bad >= 0 {
		r, _ := utf8.DecodeRuneInString(s[bad:])
		return fmt.Sprintf("contains a control character (%U); remove it", r)
	}
	return ""
}

func unwanted(r rune) bool {
	if r == '\n' || r == '\r' || r == '\t' {
		return false
	}
	return unicode.IsControl(r)
}
