package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

var decodeOpts = []jsontext.Options{jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)}

// v4Document validates the brightrun-lora-v4 JSON document form by walking
// the token stream: training_file_metadata (header counts), skipping
// consultant_profile, then conversations[] one pair at a time. Nothing but
// the current pair and the per-conversation state is held in memory.
func (v *run) v4Document() error {
	limit := int64(2*v.opts.MaxLineBytes + 1<<20)
	tr := newLineTracker(v.br, limit, func(line, col int) {
		v.sink.errorf(line, col, "", CodeInvalidUTF8, "invalid UTF-8 byte sequence")
	})
	d := jsontext.NewDecoder(tr, decodeOpts...)
	p := &parser{d: d, tr: tr, sink: v.sink, agg: v.agg, opts: v.opts, doc: true}
	if err := v.docBody(p); err != nil {
		return v.docError(p, err)
	}
	return nil
}

// docError turns a decoder error into an issue; it returns an error only
// for I/O and context failures.
func (v *run) docError(p *parser, err error) error {
	if v.src.err != nil {
		return v.src.err
	}
	if cerr := v.ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return cerr
	}
	if errors.Is(err, errValueTooLarge) {
		line, _ := p.tr.lineCol(p.tr.mark)
		v.sink.errorf(line, 0, "", CodeValueTooLarge, "a single JSON value starting at or after line %d is larger than the %d-byte limit; validation stopped", line, v.opts.MaxLineBytes)
		return nil
	}
	var serr *jsontext.SyntacticError
	off := p.d.InputOffset()
	msg := err.Error()
	if errors.As(err, &serr) {
		off = serr.ByteOffset
		if serr.Err != nil {
			msg = serr.Err.Error()
		}
		if serr.JSONPointer != "" {
			msg += fmt.Sprintf(" (within %s)", serr.JSONPointer)
		}
	}
	if off < p.tr.mark {
		off = p.tr.mark
	}
	line, col := p.tr.lineCol(off)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		v.sink.errorf(line, col, "", CodeTruncated, "the file ends in the middle of the JSON document (after %d bytes)", p.tr.off)
		return nil
	}
	v.sink.errorf(line, col, "", CodeInvalidJSON, "JSON syntax error: %s; validation stopped here", msg)
	return nil
}

func (v *run) docWrongType(p *parser, field, want string, k jsontext.Kind) error {
	v.sink.errorf(p.here(), 0, field, CodeWrongType, "%s must be %s, got %s", field, want, kindName(k))
	return p.d.SkipValue()
}

func (v *run) docBody(p *parser) error {
	d := p.d
	if k := d.PeekKind(); k != '{' {
		if k == 0 {
			return p.fail()
		}
		v.sink.errorf(p.here(), 0, "", CodeWrongType, "the document must be a JSON object, got %s", kindName(k))
		return nil
	}
	var hdrConvs, hdrPairs, hcLine, hpLine int
	var hasHC, hasHP, sawConvs bool
	err := p.object(func(n []byte) error {
		switch string(n) {
		case "training_file_metadata":
			if k := d.PeekKind(); k != '{' {
				if k == 0 {
					return p.fail()
				}
				return v.docWrongType(p, "training_file_metadata", "an object", k)
			}
			return p.object(func(n []byte) error {
				switch string(n) {
				case "total_conversations":
					if d.PeekKind() == '0' {
						hcLine = p.here()
						tok, err := d.ReadToken()
						hdrConvs, hasHC = int(tok.Int()), err == nil
						return err
					}
				case "total_training_pairs":
					if d.PeekKind() == '0' {
						hpLine = p.here()
						tok, err := d.ReadToken()
						hdrPairs, hasHP = int(tok.Int()), err == nil
						return err
					}
				}
				return d.SkipValue()
			})
		case "conversations":
			sawConvs = true
			if k := d.PeekKind(); k != '[' {
				if k == 0 {
					return p.fail()
				}
				return v.docWrongType(p, "conversations", "an array", k)
			}
			return p.array(func(i int) error { return v.docConversation(p, i) })
		default:
			return d.SkipValue()
		}
	})
	if err != nil {
		return err
	}
	if _, err := d.ReadValue(); err != io.EOF {
		if err != nil {
			return err
		}
		line, col := p.tr.lineCol(d.InputOffset())
		v.sink.errorf(line, col, "", CodeInvalidJSON, "unexpected data after the end of the JSON document")
		return nil
	}
	if !sawConvs {
		v.sink.errorf(1, 0, "conversations", CodeMissingField, "the document has no conversations array")
	}
	if hasHC && hdrConvs != v.agg.totalConvs {
		v.sink.warnf(hcLine, "training_file_metadata.total_conversations", WarnHeaderCountMismatch,
			"training_file_metadata.total_conversations is %d but the file has %d conversations", hdrConvs, v.agg.totalConvs)
	}
	if hasHP && hdrPairs != v.agg.totalPairs {
		v.sink.warnf(hpLine, "training_file_metadata.total_training_pairs", WarnHeaderCountMismatch,
			"training_file_metadata.total_training_pairs is %d but the file has %d training pairs", hdrPairs, v.agg.totalPairs)
	}
	return nil
}

type pendingSample struct {
	ex    Example
	first bool
}

// docConversation reads conversations[i]. The conversation key
// (conversation_metadata.conversation_id) may come before or after the
// pairs, so per-conversation counts are kept in a temporary convState and
// merged when the object ends.
func (v *run) docConversation(p *parser, i int) error {
	if err := v.ctx.Err(); err != nil {
		return err
	}
	d := p.d
	p.convIdx = i
	path := fmt.Sprintf("conversations[%d]", i)
	line := p.here()
	if k := d.PeekKind(); k != '{' {
		if k == 0 {
			return p.fail()
		}
		return v.docWrongType(p, path, "an object", k)
	}
	var c convState
	var convID string
	hasID := false
	var pending []pendingSample
	var pr v4Pair
	err := p.object(func(n []byte) error {
		switch string(n) {
		case "conversation_metadata":
			if k := d.PeekKind(); k != '{' {
				if k == 0 {
					return p.fail()
				}
				return v.docWrongType(p, path+".conversation_metadata", "an object", k)
			}
			return p.object(func(n []byte) error {
				switch string(n) {
				case "conversation_id":
					if k := d.PeekKind(); k != '"' {
						if k == 0 {
							return p.fail()
						}
						hasID = true // reported as wrong type
						return v.docWrongType(p, path+".conversation_metadata.conversation_id", "a string", k)
					}
					tok, err := d.ReadToken()
					if err == nil {
						convID, hasID = tok.String(), true
						if len(bytes.TrimSpace([]byte(convID))) == 0 {
							v.sink.errorf(line, 0, path+".conversation_metadata.conversation_id", CodeEmptyField, "conversation_id is empty")
						}
					}
					return err
				case "scaffolding":
					if d.PeekKind() != '{' {
						return d.SkipValue()
					}
					return p.object(func(n []byte) error {
						var target *string
						switch string(n) {
						case "persona_key":
							target = &c.persona
						case "emotional_arc_key":
							target = &c.arc
						case "training_topic_key":
							target = &c.topic
						default:
							return d.SkipValue()
						}
						if d.PeekKind() != '"' {
							return d.SkipValue()
						}
						v, err := d.ReadValue()
						if err == nil {
							*target = p.agg.internStr(v[1 : len(v)-1])
						}
						return err
					})
				}
				return d.SkipValue()
			})
		case "training_pairs":
			if k := d.PeekKind(); k != '[' {
				if k == 0 {
					return p.fail()
				}
				return v.docWrongType(p, path+".training_pairs", "an array", k)
			}
			return p.array(func(j int) error {
				p.convIdx, p.pairIdx = i, j
				if k := d.PeekKind(); k != '{' {
					if k == 0 {
						return p.fail()
					}
					v.agg.totalPairs++
					v.agg.invalid++
					c.pairs++
					return v.docWrongType(p, fmt.Sprintf("%s.training_pairs[%d]", path, j), "an object", k)
				}
				before := v.sink.errorCount
				if err := p.parsePair(&pr); err != nil {
					return err
				}
				if end := d.InputOffset(); end-pr.startOff > int64(v.opts.MaxLineBytes) {
					v.sink.errorf(pr.line, 0, p.exampleField(), CodeValueTooLarge, "the training pair is larger than the %d-byte limit", v.opts.MaxLineBytes)
				}
				if ex, first, ok := p.finishV4(&pr, before, false, &c); ok {
					pending = append(pending, pendingSample{ex, first})
				}
				return nil
			})
		default:
			return d.SkipValue()
		}
	})
	if err != nil {
		return err
	}
	key := convID
	if !hasID {
		v.sink.errorf(line, 0, path+".conversation_metadata.conversation_id", CodeMissingField, "the conversation has no conversation_metadata.conversation_id")
		key = path
	}
	idx, isNew := v.agg.conv([]byte(key))
	if !isNew {
		v.agg.totalConvs++
		v.sink.warnf(line, path+".conversation_metadata.conversation_id", WarnDuplicateConversation, "conversation_id %q is used by more than one conversation", truncate([]byte(key), 80))
	}
	dst := &v.agg.convs[idx]
	dst.pairs += c.pairs
	dst.trainable += c.trainable
	dst.turns = max(dst.turns, c.turns)
	if dst.persona == "" {
		dst.persona = c.persona
	}
	if dst.arc == "" {
		dst.arc = c.arc
	}
	if dst.topic == "" {
		dst.topic = c.topic
	}
	p.flushRows(idx)
	for _, ps := range pending {
		v.agg.offerSample(dst.key, ps.ex, ps.first && isNew)
	}
	return nil
}
