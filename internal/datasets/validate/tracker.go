package validate

import (
	"bytes"
	"errors"
	"io"
	"unicode/utf8"
)

// errValueTooLarge is returned by lineTracker.Read when the JSON decoder has
// buffered more than the allowed amount past the last position the parser
// asked about, i.e. a single JSON value is larger than the cap. It keeps the
// decoder's buffer (and so memory) bounded.
var errValueTooLarge = errors.New("single JSON value exceeds the size limit")

// countingReader counts the bytes read from the source and remembers the
// first I/O error (other than io.EOF) so that Validate can return it.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// lineTracker sits between the buffered source and the JSON decoder of the
// document form. It records the offsets of newlines the decoder has read
// but the parser has not yet asked about, so that a decoder offset can be
// mapped to a line and column. Offsets are asked in increasing order, so
// released newlines are dropped: memory is bounded by the decoder's
// read-ahead, itself bounded by limit. It also checks UTF-8 on the fly and
// reports invalid sequences (one per line) through onBadUTF8.
type lineTracker struct {
	r      io.Reader
	off    int64   // bytes handed to the decoder
	nl     []int64 // pending newline offsets, ascending
	head   int     // nl[head:] are pending
	lines  int     // newlines released (before the last asked offset)
	lastNL int64   // offset of the last released newline, -1 if none
	mark   int64   // last asked offset
	limit  int64   // maximal read-ahead past mark

	carry     []byte // incomplete UTF-8 sequence at the end of the last chunk
	badLine   int
	onBadUTF8 func(line, col int)
}

func newLineTracker(r io.Reader, limit int64, onBad func(line, col int)) *lineTracker {
	return &lineTracker{r: r, lastNL: -1, limit: limit, onBadUTF8: onBad}
}

func (t *lineTracker) Read(p []byte) (int, error) {
	if t.off-t.mark > t.limit {
		return 0, errValueTooLarge
	}
	n, err := t.r.Read(p)
	if n > 0 {
		chunk := p[:n]
		base := t.off
		for i := 0; ; {
			j := bytes.IndexByte(chunk[i:], '\n')
			if j < 0 {
				break
			}
			t.nl = append(t.nl, base+int64(i+j))
			i += j + 1
		}
		t.checkUTF8(chunk, base)
		t.off += int64(n)
	}
	if err == io.EOF && len(t.carry) > 0 {
		t.bad(t.off - int64(len(t.carry)))
		t.carry = t.carry[:0]
	}
	return n, err
}

// checkUTF8 validates chunk (starting at offset base), carrying an
// incomplete trailing sequence over to the next chunk.
func (t *lineTracker) checkUTF8(chunk []byte, base int64) {
	if len(t.carry) > 0 {
		// Complete the carried sequence with up to 3 bytes of this chunk.
		start := base - int64(len(t.carry))
		k := 0
		for !utf8.FullRune(t.carry) && k < len(chunk) {
			t.carry = append(t.carry, chunk[k])
			k++
		}
		if !utf8.FullRune(t.carry) {
			return // still incomplete (tiny chunk); keep carrying
		}
		r, size := utf8.DecodeRune(t.carry)
		if r == utf8.RuneError && size <= 1 {
			t.bad(start)
		}
		// Bytes of this chunk after the decoded rune are rechecked below.
		consumed := size - (len(t.carry) - k)
		if consumed < 0 {
			consumed = 0
		}
		t.carry = t.carry[:0]
		chunk = chunk[consumed:]
		base += int64(consumed)
	}
	cut := len(chunk)
	for i := len(chunk) - 1; i >= 0 && i >= len(chunk)-3; i-- {
		if utf8.RuneStart(chunk[i]) {
			if !utf8.FullRune(chunk[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(chunk[:cut]) {
		b := chunk[:cut]
		for i := 0; i < len(b); {
			if b[i] < utf8.RuneSelf {
				i++
				continue
			}
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				t.bad(base + int64(i))
			}
			i += size
		}
	}
	t.carry = append(t.carry, chunk[cut:]...)
}

func (t *lineTracker) bad(off int64) {
	if t.onBadUTF8 == nil {
		return
	}
	// Count pending newlines before off (does not release them).
	line, last := t.lines, t.lastNL
	for _, o := range t.nl[t.head:] {
		if o >= off {
			break
		}
		line++
		last = o
	}
	if line+1 == t.badLine {
		return
	}
	t.badLine = line + 1
	t.onBadUTF8(line+1, int(off-last))
}

// lineCol maps a decoder offset to a 1-based line and column. Offsets must
// be asked in non-decreasing order; asking releases earlier newlines.
func (t *lineTracker) lineCol(off int64) (line, col int) {
	if off > t.mark {
		t.mark = off
	}
	for t.head < len(t.nl) && t.nl[t.head] < off {
		t.lastNL = t.nl[t.head]
		t.lines++
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.nl) {
		n := copy(t.nl, t.nl[t.head:])
		t.nl = t.nl[:n]
		t.head = 0
	}
	return t.lines + 1, int(off - t.lastNL)
}
