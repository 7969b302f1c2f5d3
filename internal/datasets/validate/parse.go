package validate

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

type role uint8

const (
	roleNone role = iota
	roleUser
	roleAssistant
	roleSystem
)

func (r role) String() string {
	switch r {
	case roleUser:
		return "user"
	case roleAssistant:
		return "assistant"
	case roleSystem:
		return "system"
	}
	return ""
}

// span is a byte range of parser.arena.
type span struct{ start, end int32 }

func (s span) len() int { return int(s.end - s.start) }

type msgSpan struct {
	role role
	span
}

// parser holds the per-pair decoding state shared by all formats. Strings
// are unquoted into arena (reset for each pair) so that a pair costs no
// allocation unless it becomes a sample.
type parser struct {
	d    *jsontext.Decoder
	tr   *lineTracker // document form; nil for JSONL
	line int          // JSONL: the current line
	sink *issueSink
	agg  *aggregator
	opts Options

	doc              bool // document form: field paths get a conversations[i].training_pairs[j]. prefix
	convIdx, pairIdx int
	subIdx           int // index substituted for "[]" in field names

	arena   []byte
	hist    []msgSpan
	msgs    []msgSpan
	rows    []profileRow // token profile rows waiting for their conversation
	nameBuf []byte
}

var errSyntax = errors.New("syntax error")

// here returns the line where the next value starts.
func (p *parser) here() int {
	if p.tr == nil {
		return p.line
	}
	p.d.PeekKind()
	off := p.d.InputOffset()
	for _, c := range p.d.UnreadBuffer() {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':' {
			off++
			continue
		}
		break
	}
	l, _ := p.tr.lineCol(off)
	return l
}

// field builds the path of a pair field for messages.
func (p *parser) field(name string) string {
	if strings.Contains(name, "[]") {
		name = strings.Replace(name, "[]", fmt.Sprintf("[%d]", p.subIdx), 1)
	}
	if p.doc {
		return fmt.Sprintf("conversations[%d].training_pairs[%d].%s", p.convIdx, p.pairIdx, name)
	}
	return name
}

// fail returns the decoder's pending error (PeekKind returned 0).
func (p *parser) fail() error {
	_, err := p.d.ReadToken()
	if err == nil {
		err = errSyntax
	}
	return err
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "invalid JSON"
}

func (p *parser) wrongType(name, want string, got jsontext.Kind) {
	p.sink.errorf(p.here(), 0, p.field(name), CodeWrongType, "%s must be %s, got %s", name, want, kindName(got))
}

// name reads an object member name; the result is valid until the next read.
func (p *parser) name() ([]byte, error) {
	v, err := p.d.ReadValue()
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	p.nameBuf, _ = jsontext.AppendUnquote(p.nameBuf[:0], v)
	return p.nameBuf, nil
}

// readStr unquotes the next (string) value into the arena.
func (p *parser) readStr() (span, error) {
	v, err := p.d.ReadValue()
	if err != nil {
		return span{}, err
	}
	start := len(p.arena)
	if bytes.IndexByte(v, '\\') < 0 {
		p.arena = append(p.arena, v[1:len(v)-1]...)
	} else {
		p.arena, _ = jsontext.AppendUnquote(p.arena, v) // invalid UTF-8 is reported elsewhere
	}
	return span{int32(start), int32(len(p.arena))}, nil
}

func (p *parser) bytesOf(s span) []byte { return p.arena[s.start:s.end] }

// strField reads a string member. ok is false when the value had another
// type (reported, skipped) or was null (isNull, only when nullable).
func (p *parser) strField(name string, nullable bool) (s span, ok, isNull bool, err error) {
	k := p.d.PeekKind()
	switch k {
	case '"':
		s, err = p.readStr()
		return s, err == nil, false, err
	case 'n':
		if nullable {
			_, err = p.d.ReadToken()
			return span{}, false, true, err
		}
	case 0:
		return span{}, false, false, p.fail()
	}
	want := "a string"
	if nullable {
		want = "a string or null"
	}
	p.wrongType(name, want, k)
	return span{}, false, false, p.d.SkipValue()
}

// optStr reads a string member if it is one, skipping anything else silently.
func (p *parser) optStr() (span, error) {
	switch p.d.PeekKind() {
	case '"':
		return p.readStr()
	case 0:
		return span{}, p.fail()
	}
	return span{}, p.d.SkipValue()
}

// object iterates the members of the object whose '{' is next; fn must
// consume the value.
func (p *parser) object(fn func(name []byte) error) error {
	if _, err := p.d.ReadToken(); err != nil {
		return err
	}
	for {
		switch p.d.PeekKind() {
		case '}':
			_, err := p.d.ReadToken()
			return err
		case 0:
			return p.fail()
		}
		n, err := p.name()
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
}

// array iterates the elements of the array whose '[' is next.
func (p *parser) array(fn func(i int) error) error {
	if _, err := p.d.ReadToken(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		switch p.d.PeekKind() {
		case ']':
			_, err := p.d.ReadToken()
			return err
		case 0:
			return p.fail()
		}
		if err := fn(i); err != nil {
			return err
		}
	}
}

func parseRole(b []byte) role {
	switch string(b) {
	case "user":
		return roleUser
	case "assistant":
		return roleAssistant
	case "system":
		return roleSystem
	}
	return roleNone
}

// message reads one {role, content} object (conversation_history entry or
// OpenAI message) and appends it to *dst when valid.
func (p *parser) message(prefix string, dst *[]msgSpan, allowSystem bool) error {
	line := p.here()
	if k := p.d.PeekKind(); k != '{' {
		if k == 0 {
			return p.fail()
		}
		p.wrongType(prefix, "an object", k)
		return p.d.SkipValue()
	}
	var r role
	var content span
	hasRole, hasContent, bad := false, false, false
	err := p.object(func(n []byte) error {
		switch string(n) {
		case "role":
			s, ok, _, err := p.strField(prefix+".role", false)
			if err != nil {
				return err
			}
			if !ok {
				bad = true
				return nil
			}
			hasRole = true
			r = parseRole(p.bytesOf(s))
			if r == roleNone || (r == roleSystem && !allowSystem) {
				p.sink.errorf(line, 0, p.field(prefix+".role"), CodeUnknownRole, "unknown role %q (expected %s)", truncate(p.bytesOf(s), 40), roleList(allowSystem))
				bad = true
			}
			p.arena = p.arena[:s.start]
		case "content":
			s, ok, isNull, err := p.strField(prefix+".content", true)
			if err != nil {
				return err
			}
			if !ok && !isNull {
				bad = true
				return nil
			}
			hasContent, content = true, s
		default:
			return p.d.SkipValue()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !hasRole && !bad {
		p.sink.errorf(line, 0, p.field(prefix+".role"), CodeMissingField, "%s has no role", p.field(prefix))
		bad = true
	}
	if !hasContent && !bad {
		p.sink.errorf(line, 0, p.field(prefix+".content"), CodeMissingField, "%s has no content", p.field(prefix))
		bad = true
	}
	if !bad {
		*dst = append(*dst, msgSpan{r, content})
	}
	return nil
}

func roleList(system bool) string {
	if system {
		return "system, user or assistant"
	}
	return "user or assistant"
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// v4Pair is one parsed brightrun-lora-v4 training pair.
type v4Pair struct {
	line                           int
	startOff                       int64
	convID, system, input, target  span
	hasConvID, hasSystem, hasInput bool
	hasTarget                      bool // a non-null string
	persona, arc, topic            span
	isMeta                         bool
	metaTotal                      int
	hasMetaTotal                   bool
}

// parsePair reads one v4 pair object (the next value). Problems are
// reported to the sink; the returned error is a syntax or I/O error.
func (p *parser) parsePair(pr *v4Pair) error {
	*pr = v4Pair{line: p.here()}
	if p.tr != nil {
		pr.startOff = p.tr.mark
	}
	p.arena = p.arena[:0]
	p.hist = p.hist[:0]
	return p.object(func(n []byte) error {
		switch string(n) {
		case "conversation_id":
			s, ok, _, err := p.strField("conversation_id", false)
			pr.convID, pr.hasConvID = s, ok
			return err
		case "system_prompt":
			s, ok, _, err := p.strField("system_prompt", false)
			pr.system, pr.hasSystem = s, ok
			if !ok {
				pr.hasSystem = true // reported as wrong_type already
			}
			return err
		case "current_user_input":
			s, ok, _, err := p.strField("current_user_input", false)
			pr.input, pr.hasInput = s, ok
			if !ok {
				pr.hasInput = true
			}
			return err
		case "target_response":
			s, ok, _, err := p.strField("target_response", true)
			pr.target, pr.hasTarget = s, ok
			return err
		case "conversation_history":
			switch k := p.d.PeekKind(); k {
			case '[':
				return p.array(func(i int) error {
					p.subIdx = i
					return p.message("conversation_history[]", &p.hist, false)
				})
			case 'n':
				_, err := p.d.ReadToken()
				return err
			case 0:
				return p.fail()
			default:
				p.wrongType("conversation_history", "an array", k)
				return p.d.SkipValue()
			}
		case "conversation_metadata":
			switch k := p.d.PeekKind(); k {
			case '{':
				return p.object(func(n []byte) error {
					var err error
					switch string(n) {
					case "persona_archetype":
						pr.persona, err = p.optStr()
					case "emotional_arc_key":
						pr.arc, err = p.optStr()
					case "training_topic_key":
						pr.topic, err = p.optStr()
					default:
						err = p.d.SkipValue()
					}
					return err
				})
			case 'n':
				_, err := p.d.ReadToken()
				return err
			case 0:
				return p.fail()
			default:
				p.wrongType("conversation_metadata", "an object", k)
				return p.d.SkipValue()
			}
		case "_meta":
			pr.isMeta = true
			if p.d.PeekKind() != '{' {
				return p.d.SkipValue()
			}
			return p.object(func(n []byte) error {
				if string(n) == "total_pairs" && p.d.PeekKind() == '0' {
					tok, err := p.d.ReadToken()
					if err == nil {
						pr.metaTotal, pr.hasMetaTotal = int(tok.Int()), true
					}
					return err
				}
				return p.d.SkipValue()
			})
		default:
			return p.d.SkipValue()
		}
	})
}

// pairOutcome is what finishPair found.
type pairOutcome int

const (
	pairInvalid pairOutcome = iota
	pairSkipped
	pairTrainable
)

// checkPair reports missing required fields; errsBefore is the sink's error
// count when the pair started.
func (p *parser) checkPair(pr *v4Pair, needConvID bool) {
	if !pr.hasSystem {
		p.sink.errorf(pr.line, 0, p.field("system_prompt"), CodeMissingField, "the pair has no system_prompt")
	}
	if !pr.hasInput {
		p.sink.errorf(pr.line, 0, p.field("current_user_input"), CodeMissingField, "the pair has no current_user_input")
	}
	if needConvID {
		if !pr.hasConvID {
			p.sink.errorf(pr.line, 0, p.field("conversation_id"), CodeMissingField, "the pair has no conversation_id")
		} else if len(bytes.TrimSpace(p.bytesOf(pr.convID))) == 0 {
			p.sink.errorf(pr.line, 0, p.field("conversation_id"), CodeEmptyField, "conversation_id is empty")
		}
	}
}

// buildV4 turns a valid pair with a target into chat messages in p.msgs.
// It returns false (after reporting) if no valid example can be built.
func (p *parser) buildV4(pr *v4Pair) bool {
	p.msgs = p.msgs[:0]
	if pr.system.len() > 0 {
		p.msgs = append(p.msgs, msgSpan{roleSystem, pr.system})
	} else {
		p.sink.warnf(pr.line, p.field("system_prompt"), WarnEmptySystemPrompt, "empty system_prompt")
	}
	for i, h := range p.hist {
		if len(bytes.TrimSpace(p.bytesOf(h.span))) == 0 {
			p.subIdx = i
			p.sink.warnf(pr.line, p.field("conversation_history[].content"), WarnEmptyTurnContent, "empty %s turn in conversation_history", h.role)
		}
		p.appendMsg(h, pr.line, "conversation_history")
	}
	input := p.bytesOf(pr.input)
	last := p.lastMsg()
	switch {
	case last != nil && last.role == roleUser && bytes.Equal(p.bytesOf(last.span), input):
		p.sink.warnf(pr.line, p.field("current_user_input"), WarnInputRepeatsHistory, "current_user_input repeats the last conversation_history turn; it is used once")
	case len(bytes.TrimSpace(input)) == 0:
		if last == nil || last.role != roleUser {
			p.sink.errorf(pr.line, 0, p.field("current_user_input"), CodeEmptyField, "current_user_input is empty and conversation_history does not end with a user turn")
			return false
		}
	default:
		p.appendMsg(msgSpan{roleUser, pr.input}, pr.line, "current_user_input")
	}
	p.msgs = append(p.msgs, msgSpan{roleAssistant, pr.target})
	return true
}

func (p *parser) lastMsg() *msgSpan {
	if len(p.msgs) == 0 {
		return nil
	}
	return &p.msgs[len(p.msgs)-1]
}

// appendMsg appends m to p.msgs, merging it into the previous message
// (joined by a blank line) when both have the same user/assistant role.
func (p *parser) appendMsg(m msgSpan, line int, field string) {
	last := p.lastMsg()
	if last == nil || last.role != m.role || m.role == roleSystem {
		p.msgs = append(p.msgs, m)
		return
	}
	p.sink.warnf(line, p.field(field), WarnConsecutiveSameRole, "two consecutive %s messages; merged into one", m.role)
	start := len(p.arena)
	p.arena = append(p.arena, p.arena[last.start:last.end]...)
	p.arena = append(p.arena, "\n\n"...)
	p.arena = append(p.arena, p.arena[m.start:m.end]...)
	last.span = span{int32(start), int32(len(p.arena))}
}

// exampleStats computes the token estimate and turns of p.msgs, records it
// and warns about long examples. It returns the number of turns.
func (p *parser) exampleStats(line int) int {
	tokens, turns := 0, 0
	for _, m := range p.msgs {
		tokens += estimateLen(m.len()) + messageOverheadTokens
		if m.role != roleSystem {
			turns++
		}
	}
	turnTok := 0
	if n := len(p.msgs); n >= 2 {
		turnTok = estimateLen(p.msgs[n-1].len()) + estimateLen(p.msgs[n-2].len())
	}
	p.agg.example(tokens, turnTok)
	p.rows = append(p.rows, p.profileRow(tokens))
	if tokens > p.opts.LongExampleTokens {
		p.sink.warnf(line, p.exampleField(), WarnLongExample, "the example has about %d tokens (more than %d)", tokens, p.opts.LongExampleTokens)
	}
	return turns
}

// profileRow is the token profile row of p.msgs (the last message is the
// target): the prompt a truncation keeps is the system prompt (when first)
// and the latest user message, as in the trainer's truncation rule
// (trainer/brightrun_trainer/encoding.py encode_example).
func (p *parser) profileRow(total int) profileRow {
	n := len(p.msgs)
	target := estimateLen(p.msgs[n-1].len()) + messageOverheadTokens
	prompt := 0
	if p.msgs[0].role == roleSystem && n > 1 {
		prompt += estimateLen(p.msgs[0].len()) + messageOverheadTokens
	}
	for i := n - 2; i >= 0; i-- {
		if p.msgs[i].role == roleUser {
			prompt += estimateLen(p.msgs[i].len()) + messageOverheadTokens
			break
		}
	}
	return profileRow{total: clamp32(total), prompt: clamp32(prompt), target: clamp32(target)}
}

// flushRows adds the pending profile rows as examples of conversation conv
// (an index into agg.convs, or -1 when there is none).
func (p *parser) flushRows(conv int) {
	for _, r := range p.rows {
		r.conv = int32(conv)
		p.agg.prof.add(r)
	}
	p.rows = p.rows[:0]
}

func (p *parser) exampleField() string {
	if p.doc {
		return fmt.Sprintf("conversations[%d].training_pairs[%d]", p.convIdx, p.pairIdx)
	}
	return ""
}

// materialize copies p.msgs into an Example.
func (p *parser) materialize() Example {
	ex := Example{Messages: make([]Message, len(p.msgs))}
	for i, m := range p.msgs {
		ex.Messages[i] = Message{Role: m.role.String(), Content: string(p.bytesOf(m.span))}
	}
	return ex
}
