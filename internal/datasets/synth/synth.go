// Package synth generates realistic synthetic BrightRun datasets of a
// requested size: brightrun-lora-v4 JSON Lines, the v4 JSON document form,
// or OpenAI chat JSONL. Output is deterministic for a seed and streamed to
// an io.Writer, so tests and benchmarks can make files of hundreds of
// megabytes without holding them in memory.
//
// The shape follows the real files in ../shared/data: conversations of
// alternating user/assistant turns; in the JSON document form one pair per
// turn with target_response null for user turns and placeholder pair-level
// ids; in JSONL only the assistant-turn pairs, whose conversation_history
// ends with the current_user_input (the real-file quirk).
package synth

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"unicode/utf8"
)

// Format of the generated file.
type Format string

const (
	V4JSONL    Format = "brightrun_lora_v4_jsonl"
	V4JSON     Format = "brightrun_lora_v4"
	OpenAIChat Format = "openai_chat_jsonl"
)

// Options describe the file to generate.
type Options struct {
	Format Format
	// TargetBytes: conversations are generated until the output reaches at
	// least this size (the last conversation is completed). Ignored when
	// Conversations > 0.
	TargetBytes int64
	// Conversations: generate exactly this many conversations.
	Conversations int
	Seed          uint64
	// MinExchanges/MaxExchanges bound the user+assistant exchanges per
	// conversation (defaults 2 and 6).
	MinExchanges, MaxExchanges int
	// HeaderQuirk makes the JSONL _meta.total_pairs count all turns
	// (user turns included), as in the real EQ-12 file; by default it is
	// the number of pair lines.
	HeaderQuirk bool
}

// Summary describes what was generated.
type Summary struct {
	Conversations  int
	Pairs          int // pairs in the file (JSON: every turn; JSONL: lines after the header; OpenAI: lines)
	TrainablePairs int // pairs with a target (OpenAI: lines)
	AllTurns       int // user + assistant turns
	Bytes          int64
}

func (o Options) norm() Options {
	if o.MinExchanges <= 0 {
		o.MinExchanges = 2
	}
	if o.MaxExchanges < o.MinExchanges {
		o.MaxExchanges = max(6, o.MinExchanges)
	}
	if o.Format == "" {
		o.Format = V4JSONL
	}
	return o
}

// Write generates the file into w.
func Write(w io.Writer, opts Options) (Summary, error) {
	opts = opts.norm()
	if opts.Conversations <= 0 {
		// First pass: find how many conversations reach TargetBytes, so that
		// headers carry exact counts; the second pass regenerates the same
		// conversations (each is seeded independently).
		n := 0
		var size int64
		g := newGen(opts)
		for size < opts.TargetBytes || n == 0 {
			c := g.conversation(n)
			size += int64(g.sizeOf(c))
			n++
		}
		opts.Conversations = n
	}
	return write(w, opts)
}

// Reader returns the generated file as a stream (generated on the fly).
func Reader(opts Options) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := Write(pw, opts)
		pw.CloseWithError(err)
	}()
	return pr
}

type turn struct {
	user, assistant string
	emotion         string
	intensity       float64
}

type conversation struct {
	id                  string
	persona, arc, topic int
	turns               []turn
}

type gen struct {
	opts Options
	buf  []byte
}

func newGen(opts Options) *gen { return &gen{opts: opts} }

func (g *gen) rng(i int) *rand.Rand {
	return rand.New(rand.NewPCG(g.opts.Seed, uint64(i)*0x9E3779B97F4A7C15+1))
}

func (g *gen) conversation(i int) *conversation {
	r := g.rng(i)
	c := &conversation{
		id:      uuid(r),
		persona: r.IntN(len(personas)),
		arc:     r.IntN(len(arcs)),
		topic:   r.IntN(len(topics)),
	}
	n := g.opts.MinExchanges + r.IntN(g.opts.MaxExchanges-g.opts.MinExchanges+1)
	for k := 0; k < n; k++ {
		c.turns = append(c.turns, turn{
			user:      paragraph(r, 2+r.IntN(5)),
			assistant: paragraph(r, 6+r.IntN(12)),
			emotion:   emotions[r.IntN(len(emotions))],
			intensity: float64(50+r.IntN(50)) / 100,
		})
	}
	return c
}

// sizeOf is the number of bytes conversation c takes in the output.
func (g *gen) sizeOf(c *conversation) int {
	n := 0
	g.emit(c, 0, func(b []byte) { n += len(b) })
	return n
}

func write(w io.Writer, opts Options) (Summary, error) {
	g := newGen(opts)
	bw := bufio.NewWriterSize(w, 256<<10)
	var sum Summary
	var werr error
	out := func(b []byte) {
		if werr == nil {
			var n int
			n, werr = bw.Write(b)
			sum.Bytes += int64(n)
		}
	}
	// Count turns for headers (cheap: only the exchange counts are needed,
	// but generating is simplest and deterministic).
	allTurns, trainable := 0, 0
	for i := 0; i < opts.Conversations; i++ {
		r := g.rng(i)
		uuid(r)
		r.IntN(len(personas))
		r.IntN(len(arcs))
		r.IntN(len(topics))
		n := opts.MinExchanges + r.IntN(opts.MaxExchanges-opts.MinExchanges+1)
		allTurns += 2 * n
		trainable += n
	}
	switch opts.Format {
	case V4JSONL:
		total := trainable
		if opts.HeaderQuirk {
			total = allTurns
		}
		out(fmt.Appendf(nil, `{"_meta":{"file_name":"synthetic-%d","total_pairs":%d,"version":"4.0.0"}}`+"\n", opts.Seed, total))
	case V4JSON:
		out(g.docHeader(opts.Conversations, allTurns))
	}
	for i := 0; i < opts.Conversations && werr == nil; i++ {
		c := g.conversation(i)
		g.emit(c, i, out)
		sum.Conversations++
		sum.AllTurns += 2 * len(c.turns)
		switch opts.Format {
		case V4JSON:
			sum.Pairs += 2 * len(c.turns)
			sum.TrainablePairs += len(c.turns)
		case V4JSONL:
			sum.Pairs += len(c.turns)
			sum.TrainablePairs += len(c.turns)
		case OpenAIChat:
			sum.Pairs++
			sum.TrainablePairs++
		}
	}
	if opts.Format == V4JSON {
		out([]byte("\n  ]\n}\n"))
	}
	if werr == nil {
		werr = bw.Flush()
	}
	return sum, werr
}

// emit produces the bytes of conversation c (index i) in pieces.
func (g *gen) emit(c *conversation, i int, out func([]byte)) {
	switch g.opts.Format {
	case V4JSONL:
		for k := range c.turns {
			b := g.pair(g.buf[:0], c, 2*k+2, false)
			g.buf = append(b, '\n')
			out(g.buf)
		}
	case V4JSON:
		b := g.buf[:0]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    {\n      \"conversation_metadata\": {\n        \"conversation_id\": "...)
		b = appendStr(b, c.id)
		b = fmt.Appendf(b, ",\n        \"source_file\": \"fp_conversation_%s.json\",\n        \"created_date\": \"2025-12-09\",\n        \"total_turns\": %d,\n        \"quality_tier\": \"experimental\",\n        \"scaffolding\": {\n          \"persona_key\": %q,\n          \"persona_name\": %q,\n          \"emotional_arc_key\": %q,\n          \"emotional_arc\": %q,\n          \"training_topic_key\": %q,\n          \"training_topic\": %q\n        }\n      },\n      \"training_pairs\": [",
			c.id, 2*len(c.turns), personas[c.persona].key, personas[c.persona].name, arcs[c.arc].key, arcs[c.arc].name, topics[c.topic].key, topics[c.topic].name)
		out(b)
		for t := 1; t <= 2*len(c.turns); t++ {
			b = b[:0]
			if t > 1 {
				b = append(b, ',')
			}
			b = append(b, "\n        "...)
			b = g.pair(b, c, t, true)
			out(b)
		}
		b = append(b[:0], "\n      ]\n    }"...)
		out(b)
		g.buf = b
	case OpenAIChat:
		b := append(g.buf[:0], `{"messages":[{"role":"system","content":`...)
		b = appendStr(b, systemPrompt)
		b = append(b, '}')
		for _, t := range c.turns {
			b = append(b, `,{"role":"user","content":`...)
			b = appendStr(b, t.user)
			b = append(b, `},{"role":"assistant","content":`...)
			b = appendStr(b, t.assistant)
			b = append(b, '}')
		}
		b = append(b, "]}\n"...)
		out(b)
		g.buf = b
	}
}

func (g *gen) docHeader(convs, pairs int) []byte {
	return fmt.Appendf(nil, `{
  "training_file_metadata": {
    "file_name": "synthetic-%d",
    "version": "4.0.0",
    "created_date": "2025-12-09T20:18:49.303Z",
    "last_updated": "2025-12-09T20:18:49.303Z",
    "format_spec": "brightrun-lora-v4",
    "target_model": "claude-sonnet-4-5",
    "vertical": "financial_planning_consultant",
    "total_conversations": %d,
    "total_training_pairs": %d,
    "quality_summary": {"avg_quality_score": 3, "min_quality_score": 3, "max_quality_score": 3, "human_reviewed_count": 0, "human_reviewed_percentage": 0}
  },
  "consultant_profile": {
    "name": "Elena Morales, CFP",
    "business": "Pathways Financial Planning",
    "core_philosophy": {"principle_1": "Money is emotional - always acknowledge feelings before facts"},
    "communication_style": {"tone": "warm, professional, never condescending", "techniques": ["acknowledge emotions explicitly"], "avoid": ["financial jargon without explanation"]}
  },
  "conversations": [`, g.opts.Seed, convs, pairs)
}

// pair appends the v4 pair for turn t (1-based; even turns are assistant
// turns with a target) of c. doc selects the JSON-document flavour
// (placeholder pair ids, pretty-printed).
func (g *gen) pair(b []byte, c *conversation, t int, doc bool) []byte {
	k := (t - 1) / 2 // exchange index
	p, a, tp := personas[c.persona], arcs[c.arc], topics[c.topic]
	short := c.id[:8]
	if doc {
		b = fmt.Appendf(b, `{"id": "fp_conversation_turn%d", "conversation_id": "fp_conversation", "turn_number": %d, `, t, t)
	} else {
		b = fmt.Appendf(b, `{"id":"fp_conversation_turn%d_%s","conversation_id":"%s","turn_number":%d,`, t, short, c.id, t)
	}
	b = fmt.Appendf(b, `"conversation_metadata":{"client_persona":"%s - %s","client_background":%s,"session_context":%s,"conversation_phase":"exploration","expected_outcome":"Clarity and a concrete next step","persona_archetype":"%s","emotional_arc":"%s","emotional_arc_key":"%s","training_topic":"%s","training_topic_key":"%s"},"system_prompt":`,
		p.name, p.label, strconv.Quote(p.background), strconv.Quote(p.context), p.key, a.name, a.key, tp.name, tp.key)
	b = appendStr(b, systemPrompt)
	b = append(b, `,"conversation_history":[`...)
	// History: every turn before t, plus (assistant turns) the user turn t-1.
	n := t - 1
	for h := 1; h <= n; h++ {
		if h > 1 {
			b = append(b, ',')
		}
		tr := c.turns[(h-1)/2]
		role, content := "user", tr.user
		if h%2 == 0 {
			role, content = "assistant", tr.assistant
		}
		b = fmt.Appendf(b, `{"turn":%d,"role":"%s","content":`, h, role)
		b = appendStr(b, content)
		b = fmt.Appendf(b, `,"emotional_state":{"primary":"%s","secondary":"hope","intensity":%.2f}}`, tr.emotion, tr.intensity)
	}
	b = append(b, `],"current_user_input":`...)
	b = appendStr(b, c.turns[k].user)
	b = fmt.Appendf(b, `,"emotional_context":{"detected_emotions":{"primary":"%s","primary_confidence":0.8,"secondary":"compassion","secondary_confidence":0.7,"intensity":%.2f,"valence":"mixed"}},"target_response":`, c.turns[k].emotion, c.turns[k].intensity)
	if t%2 == 0 {
		b = appendStr(b, c.turns[k].assistant)
	} else {
		b = append(b, "null"...)
	}
	b = fmt.Appendf(b, `,"training_metadata":{"difficulty_level":"intermediate_conversation_turn_%d","key_learning_objective":"%s","demonstrates_skills":["%s"],"conversation_turn":%d,"emotional_progression_target":"%s","quality_score":3,"quality_criteria":{"empathy_score":2.9,"clarity_score":3.2,"appropriateness_score":3,"brand_voice_alignment":2.9},"human_reviewed":false,"reviewer_notes":null,"use_as_seed_example":false,"generate_variations_count":0}}`,
		t, tp.key, p.key, t, a.name)
	return b
}

// appendStr appends s as a JSON string.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = fmt.Appendf(b, `\u%04x`, c)
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func uuid(r *rand.Rand) string {
	x, y := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", x>>32, x>>16&0xffff, x&0xfff, 0x8000|y>>48&0x3fff, y&0xffffffffffff)
}

func paragraph(r *rand.Rand, sentences int) string {
	b := make([]byte, 0, sentences*90)
	for s := 0; s < sentences; s++ {
		if s > 0 {
			if r.IntN(12) == 0 {
				b = append(b, "\n\n"...)
			} else {
				b = append(b, ' ')
			}
		}
		n := 8 + r.IntN(14)
		for w := 0; w < n; w++ {
			word := words[r.IntN(len(words))]
			if w == 0 {
				rn, size := utf8.DecodeRuneInString(word)
				if rn >= 'a' && rn <= 'z' {
					b = append(b, byte(rn-32))
					word = word[size:]
				}
			} else {
				b = append(b, ' ')
			}
			b = append(b, word...)
		}
		switch r.IntN(10) {
		case 0:
			b = append(b, '?')
		case 1:
			b = append(b, " — that's the \"real\" question."...)
		default:
			b = append(b, '.')
		}
	}
	return string(b)
}
