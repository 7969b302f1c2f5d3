package validate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// readLine returns the next line without its "\n" / "\r\n". last is true
// when it was not followed by a newline (end of file); a line longer than
// MaxLineBytes is consumed but not kept (tooLong). The returned slice is
// valid until the next call.
func (v *run) readLine(buf *[]byte) (line []byte, last, tooLong bool, err error) {
	max := v.opts.MaxLineBytes
	frag, err := v.br.ReadSlice('\n')
	switch err {
	case nil:
		line = frag
	case io.EOF:
		line, last, err = frag, true, nil
	case bufio.ErrBufferFull:
		*buf = append((*buf)[:0], frag...)
		for {
			frag, err = v.br.ReadSlice('\n')
			if !tooLong {
				if len(*buf)+len(frag) > max+2 {
					tooLong = true
					*buf = (*buf)[:0]
				} else {
					*buf = append(*buf, frag...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				last, err = true, nil
			}
			break
		}
		line = *buf
	}
	if err != nil {
		return nil, false, false, err
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > max {
		tooLong = true
	}
	return line, last, tooLong, nil
}

// jsonl validates the v4 JSON Lines form or (openai) OpenAI chat JSONL,
// one line at a time with a reused buffer and decoder.
func (v *run) jsonl(openai bool) error {
	p := &parser{sink: v.sink, agg: v.agg, opts: v.opts}
	p.d = jsontext.NewDecoder(bytes.NewBuffer(nil), decodeOpts...)
	var buf []byte
	var pr v4Pair
	var dummy convState
	lineNo, pairs := 0, 0
	first := true
	metaLine, metaTotal, hasMeta := 0, 0, false
	for {
		line, last, tooLong, err := v.readLine(&buf)
		if err != nil {
			return err
		}
		lineNo++
		if lineNo&255 == 0 {
			if err := v.ctx.Err(); err != nil {
				return err
			}
		}
		if last && len(line) == 0 {
			break
		}
		blank := len(bytes.TrimSpace(line)) == 0
		switch {
		case tooLong:
			v.sink.errorf(lineNo, 0, "", CodeLineTooLong, "line %d is longer than the %d-byte limit; it was skipped", lineNo, v.opts.MaxLineBytes)
			v.agg.totalPairs++
			v.agg.invalid++
			pairs++
		case blank:
		case !utf8.Valid(line):
			v.sink.errorf(lineNo, firstInvalidUTF8(line)+1, "", CodeInvalidUTF8, "invalid UTF-8 byte sequence; the line was skipped")
			v.agg.totalPairs++
			v.agg.invalid++
			pairs++
		default:
			p.line = lineNo
			p.d.Reset(bytes.NewBuffer(line), decodeOpts...)
			before := v.sink.errorCount
			var err error
			isMeta := false
			if openai {
				err = v.openaiLine(p)
			} else if k := p.d.PeekKind(); k != '{' && k != 0 {
				v.sink.errorf(lineNo, 1, "", CodeNotAnObject, "the line must be a JSON object (one training pair), got %s", kindName(k))
				v.agg.totalPairs++
				v.agg.invalid++
				pairs++
				break
			} else {
				err = p.parsePair(&pr)
				isMeta = pr.isMeta && err == nil
			}
			if err == nil {
				err = v.checkLineEnd(p)
			}
			if err != nil {
				if isMeta {
					pr.isMeta = false
				}
				v.lineSyntaxError(p, err, last)
				v.agg.totalPairs++
				v.agg.invalid++
				pairs++
				break
			}
			if openai {
				pairs++
				break
			}
			if pr.isMeta {
				if first {
					metaLine, hasMeta = lineNo, true
					metaTotal = pr.metaTotal
					if !pr.hasMetaTotal {
						hasMeta = false
					}
				} else {
					v.sink.errorf(lineNo, 0, "_meta", CodeMisplacedHeader, "a {\"_meta\": …} header line is only allowed as the first line")
				}
				break
			}
			if first {
				v.sink.warnf(lineNo, "", WarnMissingHeader, "the file has no {\"_meta\": …} header line")
			}
			pairs++
			c, idx := &dummy, -1
			if pr.hasConvID && pr.convID.len() > 0 {
				idx, _ = v.agg.conv(p.bytesOf(pr.convID))
				c = &v.agg.convs[idx]
			}
			if ex, isFirst, ok := p.finishV4(&pr, before, true, c); ok {
				v.agg.offerSample(c.key, ex, isFirst)
			}
			p.flushRows(idx)
		}
		if !blank {
			first = false
		}
		if last {
			break
		}
	}
	if hasMeta && metaTotal != pairs {
		v.sink.warnf(metaLine, "_meta.total_pairs", WarnHeaderCountMismatch,
			"_meta.total_pairs is %d but the file has %d pair lines", metaTotal, pairs)
	}
	return nil
}

// checkLineEnd makes sure nothing follows the object on the line.
func (v *run) checkLineEnd(p *parser) error {
	_, err := p.d.ReadValue()
	if err == io.EOF {
		return nil
	}
	if err == nil {
		err = errTrailing
	}
	return err
}

var errTrailing = errors.New("unexpected data after the JSON object")

func (v *run) lineSyntaxError(p *parser, err error, last bool) {
	col := int(p.d.InputOffset()) + 1
	msg := err.Error()
	var serr *jsontext.SyntacticError
	if errors.As(err, &serr) {
		col = int(serr.ByteOffset) + 1
		if serr.Err != nil {
			msg = serr.Err.Error()
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		if last {
			v.sink.errorf(p.line, col, "", CodeTruncated, "the last line ends in the middle of a JSON object; the file looks truncated")
			return
		}
		v.sink.errorf(p.line, col, "", CodeInvalidJSON, "the line ends before its JSON object is complete")
		return
	}
	v.sink.errorf(p.line, col, "", CodeInvalidJSON, "JSON syntax error: %s", msg)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return 0
}

// openaiLine validates one OpenAI chat JSONL line
// ({"messages":[{"role":…,"content":…},…]}).
func (v *run) openaiLine(p *parser) error {
	d := p.d
	if k := d.PeekKind(); k != '{' {
		if k == 0 {
			return p.fail()
		}
		v.sink.errorf(p.line, 1, "", CodeNotAnObject, "the line must be a JSON object, got %s", kindName(k))
		v.agg.totalPairs++
		v.agg.invalid++
		return d.SkipValue()
	}
	before := v.sink.errorCount
	p.arena, p.hist, p.msgs = p.arena[:0], p.hist[:0], p.msgs[:0]
	hasMessages := false
	err := p.object(func(n []byte) error {
		if string(n) != "messages" {
			return d.SkipValue()
		}
		hasMessages = true
		if k := d.PeekKind(); k != '[' {
			if k == 0 {
				return p.fail()
			}
			p.wrongType("messages", "an array", k)
			return d.SkipValue()
		}
		return p.array(func(i int) error {
			p.subIdx = i
			return p.message("messages[]", &p.hist, true)
		})
	})
	if err != nil {
		return err
	}
	if err := v.checkLineEnd(p); err != nil {
		return err
	}
	v.agg.totalPairs++
	line := p.line
	firstUser := -1
	if !hasMessages {
		v.sink.errorf(line, 0, "messages", CodeMissingField, "the line has no messages array")
	} else if v.sink.errorCount == before && len(p.hist) == 0 {
		v.sink.errorf(line, 0, "messages", CodeEmptyField, "messages is empty")
	}
	for i, m := range p.hist {
		if m.role == roleSystem && i > 0 {
			p.subIdx = i
			v.sink.errorf(line, 0, p.field("messages[].role"), CodeUnknownRole, "a system message is only allowed as the first message")
		}
		if m.role == roleUser && firstUser < 0 {
			firstUser = i
		}
	}
	if firstUser < 0 && len(p.hist) > 0 && v.sink.errorCount == before {
		v.sink.errorf(line, 0, "messages", CodeNoUserMessage, "the conversation has no user message")
	}
	if v.sink.errorCount > before {
		v.agg.invalid++
		return nil
	}
	lastM := p.hist[len(p.hist)-1]
	if lastM.role != roleAssistant || len(bytes.TrimSpace(p.bytesOf(lastM.span))) == 0 {
		v.agg.skipped++
		v.sink.warnf(line, "messages", WarnSkippedNoTarget, "the conversation does not end with a non-empty assistant message; skipped: it is not a trainable example")
		return nil
	}
	sum := sha256.Sum256(p.bytesOf(p.hist[firstUser].span))
	var key [64]byte
	hex.Encode(key[:], sum[:])
	for i, m := range p.hist {
		if m.role != roleSystem && len(bytes.TrimSpace(p.bytesOf(m.span))) == 0 {
			p.subIdx = i
			v.sink.warnf(line, p.field("messages[].content"), WarnEmptyTurnContent, "empty %s message", m.role)
		}
		p.appendMsg(m, line, "messages")
	}
	idx, _ := v.agg.conv(key[:])
	c := &v.agg.convs[idx]
	c.pairs++
	isFirst := c.trainable == 0
	turns := p.exampleStats(line)
	p.flushRows(idx)
	c.trainable++
	c.turns = max(c.turns, int32(turns))
	if v.agg.wantSample(isFirst) {
		v.agg.offerSample(c.key, p.materialize(), isFirst)
	}
	return nil
}
