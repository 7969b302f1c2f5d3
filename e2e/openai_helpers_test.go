package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/brightrun/brightrun/internal/testdata"
)

// chatJSONL writes the EQ-12 conversations as OpenAI chat JSONL (one
// {"messages": [...]} per line: system prompt, history, user input,
// assistant target), the format OpenAI's fine-tuning guide uploads; the
// first n conversations only, so that a tiny-model run stays short.
func chatJSONL(t *testing.T, n int) string {
	t.Helper()
	in, err := os.Open(testdata.Path(t, testdata.EQ12JSONL))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), "eq12-chat.jsonl")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(f)
	kept := 0
	for kept < n && sc.Scan() {
		var row struct {
			SystemPrompt        string `json:"system_prompt"`
			ConversationHistory []msg  `json:"conversation_history"`
			CurrentUserInput    string `json:"current_user_input"`
			TargetResponse      string `json:"target_response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row.TargetResponse == "" {
			continue // the _meta header line
		}
		msgs := []msg{{"system", row.SystemPrompt}}
		for _, h := range row.ConversationHistory {
			msgs = append(msgs, msg{h.Role, h.Content})
		}
		msgs = append(msgs, msg{"user", row.CurrentUserInput}, msg{"assistant", row.TargetResponse})
		if err := enc.Encode(map[string]any{"messages": msgs}); err != nil {
			t.Fatal(err)
		}
		kept++
	}
	if err := sc.Err(); err != nil || kept != n {
		t.Fatalf("converted %d conversations: %v", kept, err)
	}
	return out
}

// badJSONL is chat JSONL whose third line is not JSON.
func badJSONL(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bad.jsonl")
	line := `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`
	if err := os.WriteFile(p, []byte(line+"\n"+line+"\n{\"messages\": [oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
