package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

// TestOpenAIChatModelAlias: an OpenAI model name the operator mapped in the
// catalog's openai.model_aliases (the table fine-tuning jobs use for model)
// names the mapped base model in /v1/chat/completions and /v1/models too;
// an unmapped OpenAI name stays model_not_found.
func TestOpenAIChatModelAlias(t *testing.T) {
	c := catalog.Default()
	c.OpenAI.ModelAliases = map[string]string{"gpt-4o-mini-2024-07-18": smol}
	b, _ := json.Marshal(c)
	path := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{Env: map[string]string{"BRIGHTRUN_CATALOG": path}})
	u := s.SignUp(t, "alias@example.com")
	a := startGoAgent(t, s, smol) // serves the base model only
	msgs := []map[string]string{{"role": "user", "content": "Say hello."}}

	var out aliasCompletion
	v1Do(t, u, "POST", "/v1/chat/completions", map[string]any{"model": "gpt-4o-mini-2024-07-18", "messages": msgs}, 200, &out)
	if w := <-a.claimed; w.BaseModel != smol || w.Adapter != nil {
		t.Fatalf("the agent got %+v, want the base model %s", w, smol)
	}
	if out.Model != "gpt-4o-mini-2024-07-18" || len(out.Choices) != 1 || out.Choices[0].Message.Content != "echo: Say hello." {
		t.Fatalf("completion: %+v", out)
	}
	var m struct {
		ID      string
		OwnedBy string `json:"owned_by"`
	}
	v1Do(t, u, "GET", "/v1/models/gpt-4o-mini-2024-07-18", nil, 200, &m)
	if m.ID != "gpt-4o-mini-2024-07-18" || m.OwnedBy != "brightrun" {
		t.Fatalf("model: %+v", m)
	}
	var list struct{ Data []struct{ ID string } }
	v1Do(t, u, "GET", "/v1/models", nil, 200, &list)
	listed := false
	for _, d := range list.Data {
		listed = listed || d.ID == "gpt-4o-mini-2024-07-18"
	}
	if !listed {
		t.Fatalf("/v1/models does not list the alias: %+v", list.Data)
	}
	var ve v1Error
	v1Do(t, u, "POST", "/v1/chat/completions", map[string]any{"model": "gpt-4o", "messages": msgs}, 404, &ve)
	if ve.Error.Code == nil || *ve.Error.Code != "model_not_found" {
		t.Fatalf("an unmapped OpenAI name: %+v", ve)
	}
	v1Do(t, u, "GET", "/v1/models/gpt-4o", nil, 404, &ve)
}

// aliasCompletion is the part of OpenAI's chat.completion the alias test reads.
type aliasCompletion struct {
	Model   string
	Choices []struct {
		Message struct{ Content string }
	}
}

// TestOpenAIChatCheckpointWork: chatting with a checkpoint id hands the
// agent (a Go double) the checkpoint's adapter files only, with signed URLs,
// under a cache key of the job and step.
func TestOpenAIChatCheckpointWork(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	u := s.SignUp(t, "ckptwork@example.com")
	ds := createDataset(t, u, "ckpt-ds", "ckpt.jsonl", 10).Dataset.ID
	ckpt := checkpointFixture(t, s, u.UserID, ds)
	a := startGoAgent(t, s, "*")
	var out aliasCompletion
	v1Do(t, u, "POST", "/v1/chat/completions", map[string]any{"model": ckpt, "messages": []map[string]string{{"role": "user", "content": "hi"}}}, 200, &out)
	w := <-a.claimed
	if w.Adapter == nil || !strings.HasPrefix(w.Adapter.ModelID, "ckpt-") || !strings.HasSuffix(w.Adapter.ModelID, "-step-4") || w.Adapter.Version <= 1 {
		t.Fatalf("adapter: %+v", w.Adapter)
	}
	var names []string
	for _, f := range w.Adapter.Files {
		names = append(names, f.Name)
		if !strings.HasPrefix(f.URL, s.URL) || f.Size <= 0 {
			t.Fatalf("file %+v", f)
		}
	}
	if strings.Join(names, ",") != "adapter_config.json,adapter_model.safetensors" {
		t.Fatalf("the agent was handed %v, want the adapter files only", names)
	}
	if out.Model != ckpt || out.Choices[0].Message.Content != "echo: hi" {
		t.Fatalf("completion: %+v", out)
	}
}
