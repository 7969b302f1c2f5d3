package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/synth"
)

const sys = "You are a helpful financial planning assistant."

// pair returns a valid v4 pair object; mods edit it.
func pair(conv string, turn int, mods ...func(map[string]any)) map[string]any {
	in := fmt.Sprintf("question %d of %s", turn, conv)
	p := map[string]any{
		"id":              fmt.Sprintf("turn%d", turn),
		"conversation_id": conv,
		"turn_number":     turn,
		"conversation_metadata": map[string]any{
			"persona_archetype": "anxious_planner", "emotional_arc_key": "confusion_to_clarity", "training_topic_key": "estate_planning_basics",
		},
		"system_prompt": sys,
		"conversation_history": []any{
			map[string]any{"turn": 1, "role": "user", "content": "hello"},
			map[string]any{"turn": 2, "role": "assistant", "content": "hi, how can I help?"},
			map[string]any{"turn": 3, "role": "user", "content": in},
		},
		"current_user_input": in,
		"target_response":    fmt.Sprintf("answer %d for %s", turn, conv),
		"training_metadata":  map[string]any{"quality_score": 3},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func line(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const header = `{"_meta":{"file_name":"t","total_pairs":3,"version":"4.0.0"}}`

func jsonl(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func validPairs() []string {
	return []string{line(pair("c1", 4)), line(pair("c2", 4)), line(pair("c3", 4))}
}

func doc(convs ...any) string {
	b, err := json.MarshalIndent(map[string]any{
		"training_file_metadata": map[string]any{"format_spec": "brightrun-lora-v4", "total_conversations": len(convs)},
		"consultant_profile":     map[string]any{"name": "x"},
		"conversations":          convs,
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func conv(id string, pairs ...any) map[string]any {
	return map[string]any{
		"conversation_metadata": map[string]any{"conversation_id": id, "scaffolding": map[string]any{"persona_key": "p"}},
		"training_pairs":        pairs,
	}
}

// lineOf returns the 1-based line of the first occurrence of marker.
func lineOf(s, marker string) int {
	i := strings.Index(s, marker)
	if i < 0 {
		panic("marker not found: " + marker)
	}
	return strings.Count(s[:i], "\n") + 1
}

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

func bigDoc(t testing.TB) string {
	var b bytes.Buffer
	if _, err := synth.Write(&b, synth.Options{Format: synth.V4JSON, TargetBytes: 2 << 20, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBadInputCorpus(t *testing.T) {
	docWrong := doc(conv("a", pair("x", 1, set("target_response", nil)), pair("x", 2)),
		conv("b", pair("x", 1), pair("x", 2), pair("x", 3), pair("x", 4, set("target_response", 42))))
	docNoConvs := `{"training_file_metadata": {"total_conversations": 1}}`
	big := bigDoc(t)
	// Corrupt the middle: the first `, "turn_number"` after the half.
	mid := len(big)/2 + strings.Index(big[len(big)/2:], `, "turn_number"`)
	bigBad := big[:mid] + `; "turn_number"` + big[mid+2:]
	badLine := strings.Count(bigBad[:mid], "\n") + 1
	badCol := mid - strings.LastIndex(bigBad[:mid], "\n")
	u := mid + strings.Index(big[mid:], `"target_response":"`) + len(`"target_response":"`)
	bigUTF8 := big[:u] + "\xff" + big[u+1:]
	utf8Line := strings.Count(big[:u], "\n") + 1
	utf8Col := u - strings.LastIndex(big[:u], "\n")
	longLine := line(pair("c9", 4, set("target_response", strings.Repeat("x", 10000))))
	meta89 := `{"_meta":{"file_name":"t","total_pairs":89,"version":"4.0.0"}}`

	cases := []struct {
		name     string
		in       string
		opts     Options
		format   string
		code     string // expected error code ("" = no error)
		line     int
		col      int    // checked when > 0
		field    string // checked when != ""
		warn     string // an expected warning code
		trainabl int    // checked when > 0
	}{
		{name: "empty file", in: "", code: CodeEmptyFile, line: 0},
		{name: "whitespace only", in: "\n\r\n  \n", code: CodeEmptyFile, line: 0},
		{name: "valid jsonl", in: jsonl(append([]string{header}, validPairs()...)...), format: FormatV4JSONL, trainabl: 3},
		{name: "BOM", in: "\xEF\xBB\xBF" + jsonl(append([]string{header}, validPairs()...)...), format: FormatV4JSONL, trainabl: 3},
		{name: "CRLF", in: strings.ReplaceAll(jsonl(append([]string{header}, validPairs()...)...), "\n", "\r\n"), format: FormatV4JSONL, trainabl: 3},
		{name: "no final newline", in: strings.TrimSuffix(jsonl(append([]string{header}, validPairs()...)...), "\n"), format: FormatV4JSONL, trainabl: 3},
		{name: "blank lines keep numbering", in: jsonl(header, "", validPairs()[0], "   ", line(pair("c2", 4, set("target_response", 7)))), format: FormatV4JSONL, code: CodeWrongType, line: 5, field: "target_response"},
		{name: "header count mismatch", in: jsonl(append([]string{meta89}, validPairs()...)...), format: FormatV4JSONL, warn: WarnHeaderCountMismatch, trainabl: 3},
		{name: "no header", in: jsonl(validPairs()...), format: FormatV4JSONL, warn: WarnMissingHeader, trainabl: 3},
		{name: "invalid utf8 jsonl", in: jsonl(header, validPairs()[0], strings.Replace(validPairs()[1], "answer", "ans\xffwer", 1), validPairs()[2]), code: CodeInvalidUTF8, line: 3, trainabl: 2},
		{name: "line over cap", in: jsonl(header, validPairs()[0], longLine, validPairs()[1]), opts: Options{MaxLineBytes: 4096}, code: CodeLineTooLong, line: 3, trainabl: 2},
		{name: "truncated jsonl", in: jsonl(header, validPairs()[0]) + validPairs()[1][:100], code: CodeTruncated, line: 3},
		{name: "syntax error jsonl", in: jsonl(header, validPairs()[0], `{"system_prompt": "x",, "a": 1}`, validPairs()[1]), code: CodeInvalidJSON, line: 3, col: 23, trainabl: 2},
		{name: "line not an object", in: jsonl(header, validPairs()[0], `[1, 2]`), code: CodeNotAnObject, line: 3},
		{name: "misplaced header", in: jsonl(validPairs()[0], header), code: CodeMisplacedHeader, line: 2},
		{name: "target_response number", in: jsonl(header, line(pair("c1", 4, set("target_response", 3.5)))), code: CodeWrongType, line: 2, field: "target_response"},
		{name: "system_prompt wrong type", in: jsonl(header, line(pair("c1", 4, set("system_prompt", []int{1})))), code: CodeWrongType, line: 2, field: "system_prompt"},
		{name: "missing system_prompt", in: jsonl(header, line(pair("c1", 4, del("system_prompt")))), code: CodeMissingField, line: 2, field: "system_prompt"},
		{name: "missing current_user_input", in: jsonl(header, line(pair("c1", 4, del("current_user_input")))), code: CodeMissingField, line: 2, field: "current_user_input"},
		{name: "missing conversation_id", in: jsonl(header, line(pair("c1", 4, del("conversation_id")))), code: CodeMissingField, line: 2, field: "conversation_id"},
		{name: "history entry without role", in: jsonl(header, line(pair("c1", 4, set("conversation_history", []any{map[string]any{"content": "hi"}})))), code: CodeMissingField, line: 2, field: "conversation_history[0].role"},
		{name: "history unknown role", in: jsonl(header, line(pair("c1", 4, set("conversation_history", []any{map[string]any{"role": "bot", "content": "hi"}})))), code: CodeUnknownRole, line: 2, field: "conversation_history[0].role"},
		{name: "history not an array", in: jsonl(header, line(pair("c1", 4, set("conversation_history", "hi")))), code: CodeWrongType, line: 2, field: "conversation_history"},
		{name: "empty input after assistant", in: jsonl(header, line(pair("c1", 4, set("current_user_input", ""), set("conversation_history", []any{})))), code: CodeEmptyField, line: 2, field: "current_user_input"},
		{name: "only user turns", in: jsonl(header, line(pair("c1", 1, set("target_response", nil)))), code: CodeNoTrainableExamples, line: 0, warn: WarnSkippedNoTarget},
		{name: "consecutive user turns merged", in: jsonl(header, line(pair("c1", 4, set("current_user_input", "and another thing")))), format: FormatV4JSONL, warn: WarnConsecutiveSameRole, trainabl: 1},
		{name: "empty system prompt", in: jsonl(header, line(pair("c1", 4, set("system_prompt", "")))), format: FormatV4JSONL, warn: WarnEmptySystemPrompt, trainabl: 1},
		{name: "long example", in: jsonl(header, longLine), opts: Options{LongExampleTokens: 1000}, format: FormatV4JSONL, warn: WarnLongExample, trainabl: 1},
		{name: "not a dataset", in: "hello world\n", code: CodeUnknownFormat, line: 1},
		{name: "json array", in: `[{"messages": []}]`, code: CodeUnknownFormat, line: 1},
		{name: "unknown object", in: "\n" + `{"foo": 1}` + "\n", code: CodeUnknownFormat, line: 2},
		{name: "openai valid", in: jsonl(`{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, `{"messages":[{"role":"user","content":"q2"},{"role":"assistant","content":"a2"}]}`), format: FormatOpenAIChat, trainabl: 2},
		{name: "openai message without role", in: jsonl(`{"messages":[{"role":"user","content":"q"},{"content":"a"}]}`), format: FormatOpenAIChat, code: CodeMissingField, line: 1, field: "messages[1].role"},
		{name: "openai unknown role", in: jsonl(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, `{"messages":[{"role":"user","content":"q"},{"role":"tool","content":"a"}]}`), code: CodeUnknownRole, line: 2, field: "messages[1].role"},
		{name: "openai content array", in: jsonl(`{"messages":[{"role":"user","content":[{"type":"text"}]},{"role":"assistant","content":"a"}]}`), code: CodeWrongType, line: 1, field: "messages[0].content"},
		{name: "openai no user", in: jsonl(`{"messages":[{"role":"system","content":"s"},{"role":"assistant","content":"a"}]}`), code: CodeNoUserMessage, line: 1},
		{name: "openai late system", in: jsonl(`{"messages":[{"role":"user","content":"q"},{"role":"system","content":"s"},{"role":"assistant","content":"a"}]}`), code: CodeUnknownRole, line: 1, field: "messages[1].role"},
		{name: "openai ends with user", in: jsonl(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, `{"messages":[{"role":"user","content":"q"}]}`), format: FormatOpenAIChat, warn: WarnSkippedNoTarget, trainabl: 1},
		{name: "openai messages missing", in: jsonl(`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, `{"msgs":[]}`), code: CodeMissingField, line: 2, field: "messages"},
		{name: "doc wrong type deep", in: docWrong, format: FormatV4JSON, code: CodeWrongType, line: lineOf(docWrong, `"target_response": 42`), field: "conversations[1].training_pairs[3].target_response"},
		{name: "doc missing conversations", in: docNoConvs, code: CodeMissingField, line: 1, field: "conversations"},
		{name: "doc missing conversation id", in: doc(map[string]any{"training_pairs": []any{pair("x", 2)}}), code: CodeMissingField, line: 6, field: "conversations[0].conversation_metadata.conversation_id"},
		{name: "doc trailing data", in: doc(conv("a", pair("x", 2))) + "\n{}", code: CodeInvalidJSON},
		{name: "doc syntax error in the middle", in: bigBad, format: FormatV4JSON, code: CodeInvalidJSON, line: badLine, col: badCol},
		{name: "doc invalid utf8", in: bigUTF8, format: FormatV4JSON, code: CodeInvalidUTF8, line: utf8Line, col: utf8Col},
		{name: "doc truncated", in: big[:len(big)/3], format: FormatV4JSON, code: CodeTruncated, line: strings.Count(big[:len(big)/3], "\n") + 1},
		{name: "doc value over cap", in: doc(conv("a", pair("x", 2, set("target_response", strings.Repeat("y", 50000))))), opts: Options{MaxLineBytes: 4096}, code: CodeValueTooLarge},
		{name: "doc header mismatch", in: strings.Replace(doc(conv("a", pair("x", 2))), `"total_conversations": 1`, `"total_conversations": 5`, 1), format: FormatV4JSON, warn: WarnHeaderCountMismatch, trainabl: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Validate(context.Background(), strings.NewReader(c.in), c.opts)
			if err != nil {
				t.Fatalf("Validate error: %v", err)
			}
			stops := res.Format == FormatV4JSON && (c.code == CodeInvalidJSON || c.code == CodeValueTooLarge)
			if res.BytesRead != int64(len(c.in)) && !stops {
				t.Errorf("BytesRead = %d, want %d", res.BytesRead, len(c.in))
			}
			if c.format != "" && res.Format != c.format {
				t.Errorf("format = %q, want %q", res.Format, c.format)
			}
			if c.trainabl > 0 && res.Stats.TrainablePairs != c.trainabl {
				t.Errorf("trainable = %d, want %d", res.Stats.TrainablePairs, c.trainabl)
			}
			if c.code == "" {
				if res.ErrorCount != 0 || !res.TrainingReady {
					t.Fatalf("unexpected errors: %+v", res.Errors)
				}
			} else {
				if res.TrainingReady {
					t.Error("TrainingReady with errors")
				}
				var found *Issue
				for i := range res.Errors {
					if res.Errors[i].Code == c.code {
						found = &res.Errors[i]
						break
					}
				}
				if found == nil {
					t.Fatalf("no %s error; got %+v", c.code, res.Errors)
				}
				if found.Severity != SeverityError || found.Error == "" || found.Suggestion == "" {
					t.Errorf("incomplete issue %+v", *found)
				}
				if c.line >= 0 && c.name != "doc trailing data" && c.code != CodeValueTooLarge && found.Line != c.line {
					t.Errorf("line = %d, want %d (%+v)", found.Line, c.line, *found)
				}
				if c.col > 0 && found.Column != c.col {
					t.Errorf("column = %d, want %d (%+v)", found.Column, c.col, *found)
				}
				if c.field != "" && found.Field != c.field {
					t.Errorf("field = %q, want %q", found.Field, c.field)
				}
			}
			if c.warn != "" {
				ok := false
				for _, w := range res.Warnings {
					ok = ok || (w.Code == c.warn && w.Severity == SeverityWarning)
				}
				if !ok {
					t.Errorf("no %s warning; got %+v", c.warn, res.Warnings)
				}
			}
			st := res.Stats
			if st.TrainingPairs+st.ValidationPairs != st.TrainablePairs {
				t.Errorf("split %d+%d != %d", st.TrainingPairs, st.ValidationPairs, st.TrainablePairs)
			}
			for _, ex := range res.Sample {
				checkAlternation(t, ex)
			}
		})
	}
}

func TestErrorCap(t *testing.T) {
	var lines []string
	for i := 0; i < 250; i++ {
		lines = append(lines, line(pair(fmt.Sprint("c", i), 4, set("target_response", i))))
	}
	res, err := Validate(context.Background(), strings.NewReader(jsonl(lines...)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 100 || res.ErrorCount != 250 {
		t.Errorf("kept %d errors, counted %d", len(res.Errors), res.ErrorCount)
	}
	if res.Errors[0].Line != 1 || res.Errors[99].Line != 100 {
		t.Errorf("first/last kept lines %d %d", res.Errors[0].Line, res.Errors[99].Line)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	s := jsonl(header, validPairs()[0])
	n := copy(p, s[:min(len(s), f.n, len(p))])
	f.n -= n
	return n, nil
}

func TestIOErrorAndCancel(t *testing.T) {
	_, err := Validate(context.Background(), &failingReader{n: 50}, Options{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("want I/O error, got %v", err)
	}
	_, err = Validate(context.Background(), io.MultiReader(strings.NewReader("{\n"), &failingReader{}), Options{Format: FormatV4JSON})
	if err == nil {
		t.Error("want I/O error for the document form")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := synth.Reader(synth.Options{Format: synth.V4JSONL, TargetBytes: 4 << 20})
	defer r.Close()
	if _, err := Validate(ctx, r, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
}
