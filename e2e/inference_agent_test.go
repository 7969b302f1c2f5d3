package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
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

	// Closing the connection mid-stream stops the generation on the real agent.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/chat/completions", strings.NewReader(`{"model":"`+adapterID+
		`","stream":true,"max_tokens":4096,"temperature":1,"messages":[{"role":"user","content":"Tell me a very long story."}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for n := 0; n < 2 && sc.Scan(); { // the role chunk, then text
		if strings.HasPrefix(sc.Text(), "data: ") {
			n++
		}
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, err := s.App.Store.InferenceList(store.WithUser(context.Background(), c.UserID), c.UserID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 && rows[0].CreatedAt.After(list[0].CreatedAt) {
			if rows[0].Status != "cancelled" || rows[0].CompletionTokens >= 4096 {
				t.Fatalf("after the client left: %+v", rows[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled request was never recorded: the agent did not stop")
		}
		// The real agent learns of the cancel on its next stream post and
		// then reports; poll the store for its record.
		time.Sleep(100 * time.Millisecond)
	}

	checkPlaygroundRealAgent(t, s, c, m.ID)
}

// checkPlaygroundRealAgent: the playground in Chromium with the real agent:
// a held-out prompt goes to both sides, both answers stream in, a vote is
// stored and exported.
func checkPlaygroundRealAgent(t *testing.T, s *testserver.Server, c *testserver.Client, modelID string) {
	b := testserver.NewBrowser(t, 1280, 900)
	b.SignIn(s.URL, "/login", c.Email, "correct horse battery")
	b.Run(chromedp.Navigate(s.URL+"/models/"+modelID+"/playground"), chromedp.WaitVisible(`[data-log=base]`, chromedp.ByQuery),
		chromedp.SetValue(`#pg-max-tokens`, "24", chromedp.ByQuery))
	var heldOut bool
	b.Run(chromedp.Evaluate(`!document.querySelector('[data-heldout]').disabled`, &heldOut))
	if !heldOut {
		t.Fatal("the trained model kept no held-out prompts for the playground")
	}
	b.Run(chromedp.Click(`[data-heldout]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-reference]`, chromedp.ByQuery),
		chromedp.Click(`[data-send]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-vote]`, chromedp.ByQuery))
	for _, side := range []string{"base", "adapter"} {
		if txt := b.Text(`[data-log=` + side + `]`); strings.Contains(txt, "Error:") || !strings.Contains(txt, "ANSWER") && !strings.Contains(txt, "answer") {
			t.Fatalf("%s side: %q", side, txt)
		}
	}
	b.Screenshot("real-agent")
	b.Run(chromedp.Click(`[data-choice=left]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('[data-prefs] li') !== null || document.querySelector('[data-vote-status]').textContent !== ''`, nil,
			chromedp.WithPollingTimeout(time.Minute)))
	var st string
	b.Run(chromedp.Evaluate(`document.querySelector('[data-vote-status]').textContent`, &st))
	if n := b.Text(`[data-pref-count]`); n != "1 vote" {
		t.Fatalf("vote not stored: %q (status %q)", n, st)
	}
	r := c.Do("GET", "/api/models/"+modelID+"/preferences.jsonl", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"chosen"`) {
		t.Fatalf("export: %d %s", r.Status, r.Body)
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
