package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/testserver"
	openai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// apiToken creates an API token for c and returns its secret.
func apiToken(t *testing.T, c *testserver.Client) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	c.MustJSON("POST", "/api/tokens", map[string]string{"name": "sdk"}, 201, &out)
	if out.Token == "" {
		t.Fatal("no token in the answer")
	}
	return out.Token
}

// sdkClient is the official openai-go client, unmodified, pointed at the server.
func sdkClient(s *testserver.Server, token string) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.URL+"/v1/"), option.WithAPIKey(token), option.WithMaxRetries(0))
}

// checkOpenAIGo drives /v1 with openai-go: the model list holds the base
// and the adapter, a non-streamed and a streamed completion with the
// adapter answer with usage, and an unknown model is OpenAI's 404. It
// returns the two answers.
func checkOpenAIGo(t *testing.T, s *testserver.Server, token, base, adapterID string) (string, string) {
	t.Helper()
	ctx := context.Background()
	client := sdkClient(s, token)
	page, err := client.Models.List(ctx)
	if err != nil {
		t.Fatalf("models.list: %v", err)
	}
	ids := map[string]bool{}
	for _, m := range page.Data {
		ids[m.ID] = true
	}
	if !ids[base] || !ids[adapterID] {
		t.Fatalf("models.list lacks %s or %s: %v", base, adapterID, ids)
	}
	if m, err := client.Models.Get(ctx, adapterID); err != nil || m.ID != adapterID {
		t.Fatalf("models.retrieve(%s): %v %+v", adapterID, err, m)
	}
	params := openai.ChatCompletionNewParams{Model: adapterID, MaxTokens: openai.Int(12), Temperature: openai.Float(0), Seed: openai.Int(7),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You answer briefly."), openai.UserMessage("Say hello.")}}
	comp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("chat.completions.create: %v", err)
	}
	if len(comp.Choices) != 1 || comp.Choices[0].Message.Content == "" || comp.Usage.CompletionTokens < 1 || comp.Usage.PromptTokens < 1 ||
		comp.Usage.TotalTokens != comp.Usage.PromptTokens+comp.Usage.CompletionTokens || (comp.Choices[0].FinishReason != "stop" && comp.Choices[0].FinishReason != "length") {
		t.Fatalf("completion: %+v", comp)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("streamed completion: %v", err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content == "" || acc.Usage.CompletionTokens < 1 || chunks < 3 {
		t.Fatalf("streamed: %d chunks, %+v", chunks, acc.ChatCompletion)
	}
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "no-such/model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Fatalf("unknown model: want a 404 model_not_found, got %v", err)
	}
	return comp.Choices[0].Message.Content, acc.Choices[0].Message.Content
}

// goAgent is a Go test double of the trainer agent at the protocol
// boundary (HTTP): it long-polls /api/agent/inference/claim and streams an
// echo of the last user message word by word. A message "forever" streams
// until the server answers cancel. The real Python agent runs in
// TestInferenceRealAgent.
type goAgent struct {
	t         *testing.T
	url, tok  string
	cancelled chan string // ids the server told to stop
	claimed   chan inference.Work
}

func startGoAgent(t *testing.T, s *testserver.Server, models ...string) *goAgent {
	t.Helper()
	tok, _, err := s.App.Agents.CreateAgent(context.Background(), "go-double")
	if err != nil {
		t.Fatal(err)
	}
	a := &goAgent{t: t, url: s.URL, tok: tok, cancelled: make(chan string, 8), claimed: make(chan inference.Work, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	registered := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for ctx.Err() == nil {
			wait := 2.0
			if first {
				wait = 0
			}
			var ans struct {
				Data inference.ClaimAnswer `json:"data"`
			}
			err := a.post(ctx, "/api/agent/inference/claim", inference.ClaimRequest{Capabilities: inference.Capabilities{GPUType: "CPU"},
				BaseModels: models, WaitSeconds: wait}, &ans)
			if first {
				close(registered)
				first = false
			}
			if err != nil || ans.Data.Request == nil {
				continue
			}
			a.claimed <- *ans.Data.Request
			go a.serve(ctx, *ans.Data.Request)
		}
	}()
	<-registered
	return a
}

func (a *goAgent) post(ctx context.Context, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", a.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (a *goAgent) serve(ctx context.Context, w inference.Work) {
	last := w.Messages[len(w.Messages)-1].Content
	words := strings.Fields("echo: " + last)
	seq := 0
	send := func(p inference.StreamPost) bool {
		s := seq
		p.Seq = &s
		seq++
		var ans struct {
			Data inference.StreamAnswer `json:"data"`
		}
		if err := a.post(ctx, "/api/agent/inference/"+w.ID+"/stream", p, &ans); err != nil {
			return true
		}
		return ans.Data.Cancel
	}
	usage := func(n int) *inference.Usage {
		return &inference.Usage{PromptTokens: len(strings.Fields(last)), CompletionTokens: n}
	}
	if last == "forever" {
		// A generation that never ends on its own, at a model-like pace (one
		// word per 20 ms) so it does not flood the machine.
		pace := time.NewTicker(20 * time.Millisecond)
		defer pace.Stop()
		for n := 1; ctx.Err() == nil; n++ {
			<-pace.C
			if send(inference.StreamPost{Text: "tick "}) {
				a.cancelled <- w.ID
				send(inference.StreamPost{Done: true, FinishReason: "cancelled", Usage: usage(n)})
				return
			}
		}
		return
	}
	for i, word := range words {
		if i > 0 {
			word = " " + word
		}
		if send(inference.StreamPost{Text: word}) {
			return
		}
	}
	send(inference.StreamPost{Done: true, FinishReason: "stop", Usage: usage(len(words))})
}
