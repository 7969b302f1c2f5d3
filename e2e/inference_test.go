package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// TestOpenAIChatWithGoAgentDouble: /v1 through the official openai-go
// client against a real server, with a Go double of the agent (see
// goAgent) so the relay, errors, cancellation and usage are checked on both
// engines without a model. TestInferenceRealAgent runs the real agent.
func TestOpenAIChatWithGoAgentDouble(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		io := inference.DefaultBrokerOptions
		io.CancelGrace = 5 * time.Second
		s := testserver.Start(t, e, testserver.Options{App: app.Options{InferenceOptions: &io}})
		c := s.SignUp(t, "chat@example.com")
		tok := apiToken(t, c)
		ds := createDataset(t, c, "chat-ds", "chat.jsonl", 10).Dataset.ID
		modelID := finishedModel(t, s, c.UserID, ds, "My Support Bot")
		m, err := s.App.Store.ModelGet(store.WithUser(context.Background(), c.UserID), c.UserID, modelID)
		if err != nil {
			t.Fatal(err)
		}
		adapterID := inference.AdapterModelID(m)
		if want := "ft:m:my-support-bot:" + modelID; adapterID != want {
			t.Fatalf("adapter id %s, want %s", adapterID, want)
		}
		bearer := s.NewClient(t)
		bearer.Bearer = tok

		// No agent online: a clear 503 at once, in OpenAI's shape.
		r := bearer.Do("POST", "/v1/chat/completions", map[string]any{"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "messages": []map[string]string{{"role": "user", "content": "hi"}}})
		if r.Status != 503 || !strings.Contains(string(r.Body), "no agent serving SmolLM2 135M Instruct (CPU demo) is online; start one with: brightrun-trainer agent --server") {
			t.Fatalf("no agent: %d %s", r.Status, r.Body)
		}

		a := startGoAgent(t, s, "*")
		answer, streamed := checkOpenAIGo(t, s, tok, "HuggingFaceTB/SmolLM2-135M-Instruct", adapterID)
		if answer != "echo: Say hello." || streamed != answer {
			t.Fatalf("answers %q / %q", answer, streamed)
		}
		// The agent got the adapter with signed URLs for its adapter files only.
		w := <-a.claimed
		<-a.claimed // the streamed one
		if w.Adapter == nil || w.Adapter.ModelID != modelID || len(w.Adapter.Files) != 1 || w.Adapter.Files[0].Name != "adapter_config.json" ||
			!strings.HasPrefix(w.Adapter.Files[0].URL, s.URL) || w.Params.MaxTokens != 12 || w.Params.Seed == nil || *w.Params.Seed != 7 {
			t.Fatalf("work: %+v adapter %+v", w, w.Adapter)
		}

		// Bad input names the field, in OpenAI's shape.
		for _, bad := range []struct {
			body  map[string]any
			param string
		}{
			{map[string]any{"model": adapterID, "n": 2, "messages": []map[string]string{{"role": "user", "content": "hi"}}}, "n"},
			{map[string]any{"model": adapterID, "tools": []any{}, "messages": []map[string]string{{"role": "user", "content": "hi"}}}, "tools"},
			{map[string]any{"model": adapterID, "temperature": 3, "messages": []map[string]string{{"role": "user", "content": "hi"}}}, "temperature"},
			{map[string]any{"model": adapterID, "messages": []map[string]string{{"role": "robot", "content": "hi"}}}, "messages[0].role"},
		} {
			r := bearer.Do("POST", "/v1/chat/completions", bad.body)
			var body struct {
				Error struct {
					Param *string
					Type  string
				}
			}
			_ = json.Unmarshal(r.Body, &body)
			if r.Status != 400 || body.Error.Param == nil || *body.Error.Param != bad.param || body.Error.Type != "invalid_request_error" {
				t.Fatalf("%v: %d %s", bad.body, r.Status, r.Body)
			}
		}
		// stop as a string is accepted and reaches the agent.
		bearer.MustJSON("POST", "/v1/chat/completions", map[string]any{"model": adapterID, "stop": "END", "max_completion_tokens": 5,
			"messages": []map[string]any{{"role": "user", "content": []map[string]string{{"type": "text", "text": "parts"}}}}}, 200, nil)
		if w := <-a.claimed; len(w.Params.Stop) != 1 || w.Params.Stop[0] != "END" || w.Params.MaxTokens != 5 || w.Messages[0].Content != "parts" {
			t.Fatalf("work: %+v", w)
		}

		// Closing the connection mid-stream cancels the generation on the agent.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"`+adapterID+`","stream":true,"messages":[{"role":"user","content":"forever"}]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && !strings.Contains(sc.Text(), "tick") {
		}
		cancel()
		resp.Body.Close()
		forever := <-a.claimed
		select {
		case id := <-a.cancelled:
			if id != forever.ID {
				t.Fatalf("cancelled %s, want %s", id, forever.ID)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the agent was never told to cancel")
		}

		// Agent calls: a wrong token is a 401, another agent's (or an
		// unknown) request a 404, a post without seq a 400.
		other, _, err := s.App.Agents.CreateAgent(context.Background(), "other")
		if err != nil {
			t.Fatal(err)
		}
		seq := 0
		otherAgent := &goAgent{url: s.URL, tok: other}
		if err := otherAgent.post(context.Background(), "/api/agent/inference/"+forever.ID+"/stream", inference.StreamPost{Seq: &seq, Text: "x"}, &struct{}{}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("another agent's stream post: %v", err)
		}
		badTok := &goAgent{url: s.URL, tok: "bra_forged"}
		if err := badTok.post(context.Background(), "/api/agent/inference/claim", inference.ClaimRequest{BaseModels: []string{"*"}}, &struct{}{}); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("forged agent token: %v", err)
		}
		if err := a.post(context.Background(), "/api/agent/inference/inf_nope/stream", map[string]any{"text": "x"}, &struct{}{}); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("post without seq: %v", err)
		}

		// Usage: every finished request is recorded with an inference cost record.
		var costs struct {
			Records []store.CostRecord `json:"records"`
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.MustJSON("GET", "/api/costs", nil, 200, &costs)
			n := 0
			for _, r := range costs.Records {
				if r.CostType == "inference" {
					n++
				}
			}
			if n >= 4 { // create, stream, stop-string, cancelled
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("inference cost records: %d of 4: %+v", n, costs.Records)
			}
			// The cancelled request is recorded when the agent's last post
			// arrives over HTTP, on its own schedule: poll.
			time.Sleep(50 * time.Millisecond)
		}
		list, err := s.App.Store.InferenceList(store.WithUser(context.Background(), c.UserID), c.UserID, 10)
		if err != nil || len(list) < 4 {
			t.Fatalf("inference requests: %v %d", err, len(list))
		}
		statuses := map[string]int{}
		for _, r := range list {
			statuses[r.Status]++
		}
		if statuses["completed"] != 3 || statuses["cancelled"] != 1 {
			t.Fatalf("statuses %v", statuses)
		}
		csv := c.Do("GET", "/api/costs/export.csv", nil)
		if !strings.Contains(string(csv.Body), ",inference,") {
			t.Fatalf("CSV lacks inference rows:\n%s", csv.Body)
		}
		page := c.Do("GET", "/costs", nil)
		if !strings.Contains(string(page.Body), "generated tokens, adapter on m on CPU, free") {
			t.Fatalf("costs page does not word inference records")
		}
	})
}
