package storage

import (
	"fmt"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Path limits. 1024 bytes is S3's key limit; 255 bytes is the usual file
// name limit of local file systems.
const (
	MaxPathLen    = 1024
	MaxSegmentLen = 255
	// MaxFileNameLen is the longest name SanitizeFileName returns.
	MaxFileNameLen = 200
)

// ReservedPrefix starts the names of backends' in-progress upload files
// (local: "<dir>/.brightrun-upload-<random>.tmp"); no path segment may start
// with it.
const ReservedPrefix = ".brightrun-upload-"

// CleanPath validates an object path and returns it unchanged when valid.
// A valid path is relative, slash-separated, made of non-empty segments
// other than "." and "..", valid UTF-8 without control characters, and
// contains none of `\`, `%`, `?`, `#`. Percent signs are refused so that no
// layer (HTTP router, S3 server, file system) can decode a path into a
// different one; "?" and "#" so that a path can never be mistaken for a URL
// query or fragment. Segments starting with ReservedPrefix are refused. Limits: MaxPathLen bytes in all, MaxSegmentLen per
// segment. Anything else yields an error wrapping ErrInvalidPath.
func CleanPath(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrInvalidPath, truncateForError(p), why)
	}
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathLen))
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute paths are not allowed")
	}
	for _, r := range p {
		switch {
		case r == '\\':
			return bad("backslashes are not allowed")
		case r == '%' || r == '?' || r == '#':
			return bad(fmt.Sprintf("%q is not allowed", r))
		case unicode.IsControl(r) || r == utf8.RuneError:
			return bad("control characters are not allowed")
		case r == '\u2028' || r == '\u2029' || r == '\ufeff':
			return bad("line separators and BOMs are not allowed")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "." || seg == "..":
			return bad("relative segments are not allowed")
		case len(seg) > MaxSegmentLen:
			return bad(fmt.Sprintf("segment longer than %d bytes", MaxSegmentLen))
		case strings.TrimSpace(seg) != seg:
			return bad("segments cannot start or end with spaces")
		case strings.HasPrefix(seg, ReservedPrefix):
			return bad(fmt.Sprintf("names starting with %q are reserved", ReservedPrefix))
		}
	}
	return p, nil
}

func truncateForError(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// SanitizeFileName turns a user-supplied file name into a safe single path
// segment: only the base name is kept (browsers send "C:\fakepath\x.json"),
// every run of characters outside [A-Za-z0-9._-] becomes one '_', leading
// and trailing dots are removed (no hidden files, never "." or ".."), and the
// result is at most MaxFileNameLen bytes with its extension kept. It never
// returns an empty string ("file" is used instead).
func SanitizeFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	lastUnderscore := false
	for _, r := range name {
		ok := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
		if !ok {
			r = '_'
		}
		if r == '_' {
			if lastUnderscore {
				continue
			}
			lastUnderscore = true
		} else {
			lastUnderscore = false
		}
		b.WriteRune(r)
	}
	s := strings.Trim(b.String(), ".")
	if strings.Trim(s, "_") == "" {
		s = "file"
	}
	if len(s) > MaxFileNameLen {
		ext := ""
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= 16 {
			ext = s[i:]
		}
		s = strings.TrimRight(s[:MaxFileNameLen-len(ext)], ".") + ext
	}
	return s
}

// ContentDisposition builds an attachment Content-Disposition value for a
// download name (RFC 6266; non-ASCII names use the RFC 2231 filename*
// form). An empty name gives plain "attachment".
func ContentDisposition(downloadName string) string {
	downloadName = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, downloadName)
	if downloadName == "" {
		return "attachment"
	}
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": downloadName}); v != "" {
		return v
	}
	return "attachment; filename=\"" + SanitizeFileName(downloadName) + "\""
}
