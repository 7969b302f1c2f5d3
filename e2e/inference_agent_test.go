package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
)

// pythonSDKScript drives /v1 with the official openai Python package
// (pinned in trainer/requirements-test.txt), unmodified.
const pythonSDKScript = `
import json, sys, openai
base_url, key, base, adapter = sys.argv[1:5]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
ids = [m.id for m in client.models.list()]
msgs = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Say hello."}]
r = client.chat.completions.create(model=adapter, messages=msgs, max_tokens=12, temperature=0, seed=7)
chunks = list(client.chat.completions.create(model=adapter, messages=msgs, max_tokens=12, temperature=0, seed=7,
                                             stream=True, stream_options={"include_usage": True}))
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
err = None
try:
    client.chat.completions.create(model="no-such/model", messages=msgs)
except openai.NotFoundError as e:
    err = {"status": e.status_code, "code": e.code}
print(json.dumps({"ids": ids, "text": r.choices[0].message.content, "finish": r.choices[0].finish_reason,
                  "usage": r.usage.model_dump(), "streamed": streamed, "stream_usage": chunks[-1].usage.model_dump(),
                  "error": err}))
`

// TestInferenceRealAgent: a tiny model is trained for real, then the real
// Python agent (the same process, serving inference beside training)
// answers /v1 chat completions with the adapter, driven by the official
// openai-go module and the official openai Python package. SQLite only:
// the relay is engine-independent and the Go-double test covers both
// engines.
func TestInferenceRealAgent(t *testing.T) {
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "real-inference@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 1)
	te.startAgent(t, s, false)
	st := waitJob(t, c, id, 10*time.Minute, func(s jobState) bool { return s.Job.Status == "completed" || s.Job.Status == "failed" })
	if st.Job.ArtifactID == nil {
		t.Fatalf("job: %+v", st.Job)
	}
	m, err := s.App.Store.ModelGet(store.WithUser(context.Background(), c.UserID), c.UserID, *st.Job.ArtifactID)
	if err != nil {
		t.Fatal(err)
	}
	adapterID := inference.AdapterModelID(m)
	tok := apiToken(t, c)

	goText, goStreamed := checkOpenAIGo(t, s, tok, tinyModel, adapterID)
	if goText != goStreamed {
		t.Fatalf("greedy answers differ: non-streamed %q, streamed %q", goText, goStreamed)
	}

	py := filepath.Join(filepath.Dir(te.exe), "python")
	out, err := exec.Command(py, "-c", pythonSDKScript, s.URL+"/v1", tok, tinyModel, adapterID).CombinedOutput()
	if err != nil {
		t.Fatalf("openai python: %v\n%s", err, lastLines(string(out), 30))
	}
	var res struct {
		IDs         []string `json:"ids"`
		Text        string
		Finish      string
		Usage       struct{ PromptTokens, CompletionTokens, TotalTokens int } `json:"usage"`
		Streamed    string
		StreamUsage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"stream_usage"`
		Error *struct {
			Status int
			Code   string
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	if !contains(res.IDs, adapterID) || !contains(res.IDs, tinyModel) {
		t.Fatalf("python models.list: %v", res.IDs)
	}
	// Greedy decoding with the same adapter gives the same answer to both SDKs.
	if res.Text != goText || res.Streamed != goText || res.StreamUsage.CompletionTokens < 1 {
		t.Fatalf("python answers %q / %q, go %q", res.Text, res.Streamed, goText)
	}
	if res.Error == nil || res.Error.Status != 404 || res.Error.Code != "model_not_found" {
		t.Fatalf("python unknown model: %+v", res.Error)
	}
	list, err := s.App.Store.InferenceList(store.WithUser(context.Background(), c.UserID), c.UserID, 20)
	if err != nil || len(list) < 4 {
		t.Fatalf("usage rows: %v %d", err, len(list))
	}
	for _, r := range list {
		if r.Status != "completed" || r.PromptTokens < 1 || r.CompletionTokens < 1 || r.ModelID == nil || *r.ModelID != m.ID {
			t.Fatalf("usage row %+v", r)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
