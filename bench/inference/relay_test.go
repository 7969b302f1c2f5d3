// Package inference measures the server's own overhead per inference
// request (relay.sh): a real server on loopback relays chat completions to an
// agent that answers at once (a Go double of the agent at the protocol
// boundary, so the generation costs nothing), and the time the caller waits
// minus the time the agent spent between claim and final post is the
// server's share: HTTP in, queue, claim wake-up, the stream posts, the relay
// out, and the usage row. A /healthz round trip in the same run is the
// baseline of one loopback HTTP call.
package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

const (
	requests = 200
	pieces   = 8 // stream posts per answer (the real agent batches tokens into posts)
)

func post(ctx context.Context, url, token string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// agent claims requests and answers each with `pieces` posts at once,
// recording how long it held each request.
type agent struct {
	url, token string
	mu         sync.Mutex
	held       map[string]time.Duration
}

func (a *agent) run(ctx context.Context) {
	for ctx.Err() == nil {
		var ans struct {
			Data inference.ClaimAnswer `json:"data"`
		}
		if err := post(ctx, a.url+"/api/agent/inference/claim", a.token, inference.ClaimRequest{Capabilities: inference.Capabilities{GPUType: "CPU"},
			BaseModels: []string{"*"}, WaitSeconds: 5}, &ans); err != nil || ans.Data.Request == nil {
			continue
		}
		start := time.Now()
		w := ans.Data.Request
		for i := range pieces {
			seq := i
			p := inference.StreamPost{Seq: &seq, Text: "word "}
			if i == pieces-1 {
				p.Done, p.FinishReason, p.Usage = true, "stop", &inference.Usage{PromptTokens: 20, CompletionTokens: pieces}
			}
			_ = post(ctx, a.url+"/api/agent/inference/"+w.ID+"/stream", a.token, p, nil)
		}
		a.mu.Lock()
		a.held[w.ID] = time.Since(start)
		a.mu.Unlock()
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func TestRelayOverhead(t *testing.T) {
	if os.Getenv("BRIGHTRUN_BENCH") == "" {
		t.Skip("benchmark: run bench/inference/relay.sh")
	}
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "bench@example.com")
	var tok struct{ Token string }
	c.MustJSON("POST", "/api/tokens", map[string]string{"name": "bench"}, 201, &tok)
	agentTok, _, err := s.App.Agents.CreateAgent(context.Background(), "bench")
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{url: s.URL, token: agentTok, held: map[string]time.Duration{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.run(ctx)
	for !s.App.Inference.Broker.Online("HuggingFaceTB/SmolLM2-135M-Instruct") {
		// Waiting for the agent's first claim poll to register it (a real
		// goroutine over HTTP): poll the broker.
		time.Sleep(time.Millisecond)
	}
	body := map[string]any{"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	for _, stream := range []bool{false, true} {
		body["stream"] = stream
		var total, overhead, health []time.Duration
		for range requests {
			t0 := time.Now()
			resp, err := http.Get(s.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			health = append(health, time.Since(t0))

			b, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			req.Header.Set("Content-Type", "application/json")
			t1 := time.Now()
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t1)
			if resp.StatusCode != 200 || !strings.Contains(string(out), "word") {
				t.Fatalf("%d %s", resp.StatusCode, out)
			}
			var id string
			if stream {
				line := strings.SplitN(strings.TrimPrefix(string(out), "data: "), "\n", 2)[0]
				var ch struct{ ID string }
				_ = json.Unmarshal([]byte(line), &ch)
				id = ch.ID
			} else {
				var cc struct{ ID string }
				_ = json.Unmarshal(out, &cc)
				id = cc.ID
			}
			a.mu.Lock()
			held := a.held["inf_"+strings.TrimPrefix(id, "chatcmpl-")]
			a.mu.Unlock()
			total = append(total, d)
			overhead = append(overhead, d-held)
		}
		t.Logf("RESULT stream=%v requests=%d pieces=%d: caller wait p50 %v p99 %v; server overhead (wait - agent's own time) p50 %v p99 %v; /healthz round trip p50 %v; overhead/healthz %.1fx",
			stream, requests, pieces, pct(total, .5), pct(total, .99), pct(overhead, .5), pct(overhead, .99), pct(health, .5),
			float64(pct(overhead, .5))/float64(pct(health, .5)))
	}
}
