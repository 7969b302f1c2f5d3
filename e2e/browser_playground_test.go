package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// playgroundArtifacts is a fixture model whose evaluation kept two held-out
// conversations (as the trainer's eval.json does) with a system prompt.
func playgroundArtifacts(userID string) string {
	return `{"files":[{"name":"adapter_config.json","size":2,"storage_path":"` + userID + `/x/adapter/adapter_config.json"}],
	"eval":{"samples_from":"validation","samples":[
	 {"prompt":"How do I reset my password?","reference":"Open Settings, then Security.","messages":[{"role":"system","content":"You are a support agent for Acme."},{"role":"user","content":"How do I reset my password?"}]},
	 {"prompt":"Thanks!","reference":"You are welcome.","messages":[{"role":"system","content":"You are a support agent for Acme."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello! How can I help?"},{"role":"user","content":"Thanks!"}]}]}}`
}

// TestBrowserPlayground: the playground in a real Chromium, at desktop and
// phone width, with the Go agent double (goAgent, at the protocol
// boundary) answering: held-out prompt and system prompt prefilled, a
// keyboard send streams both sides, a vote is stored and exported as JSONL,
// and the stop button cancels the generation on the agent.
func TestBrowserPlayground(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	a := startGoAgent(t, s, "*")
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			c := s.SignUp(t, vp.name+"-pg@example.com")
			ds := createDataset(t, c, "support chats", "chats.jsonl", 10).Dataset.ID
			id := finishedModelWith(t, s, c.UserID, ds, "Support bot", playgroundArtifacts(c.UserID))
			b := testserver.NewBrowser(t, vp.w, vp.h)
			b.SignIn(s.URL, "/login", c.Email, "correct horse battery")
			b.Run(chromedp.Navigate(s.URL+"/models/"+id), chromedp.WaitVisible(`[data-testid=ft-id]`, chromedp.ByQuery))
			if ft := b.Text(`[data-testid=ft-id]`); !strings.HasPrefix(ft, "ft:m:support-bot:"+id) {
				t.Fatalf("ft id on the model page: %q", ft)
			}
			if py := b.Text(`[data-testid=snippet-python]`); !strings.Contains(py, `base_url="`+s.URL+`/v1"`) || !strings.Contains(py, `model="ft:m:support-bot:`+id) {
				t.Fatalf("python snippet: %q", py)
			}
			b.Screenshot("model-page")
			b.Run(chromedp.Click(`[data-testid=playground]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-log=base]`, chromedp.ByQuery))
			var sys string
			b.Run(chromedp.Value(`#pg-system`, &sys, chromedp.ByQuery))
			if sys != "You are a support agent for Acme." {
				t.Fatalf("system prompt %q", sys)
			}
			// Held-out prompt: the input gets the question, the reference is shown.
			b.Run(chromedp.Click(`[data-heldout]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-reference]`, chromedp.ByQuery))
			var q string
			b.Run(chromedp.Value(`#pg-input`, &q, chromedp.ByQuery))
			if q != "How do I reset my password?" {
				t.Fatalf("held-out prompt %q", q)
			}
			// Keyboard: Ctrl+Enter in the message box sends to both.
			b.Run(chromedp.Focus(`#pg-input`, chromedp.ByQuery), chromedp.KeyEvent("\r", chromedp.KeyModifiers(input.ModifierCtrl)),
				chromedp.WaitVisible(`[data-vote]`, chromedp.ByQuery))
			for _, side := range []string{"base", "adapter"} {
				if got := b.Text(`[data-log=` + side + `]`); !strings.Contains(got, "echo: How do I reset my password?") {
					t.Fatalf("%s side shows %q", side, got)
				}
			}
			b.Screenshot("answered")
			b.Run(chromedp.Click(`[data-choice=right]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-prefs] li`, chromedp.ByQuery))
			if n := b.Text(`[data-pref-count]`); n != "1 vote" {
				t.Fatalf("votes: %q", n)
			}
			r := c.Do("GET", "/api/models/"+id+"/preferences.jsonl", nil)
			var pair struct {
				Prompt   []struct{ Role, Content string }
				Chosen   []struct{ Role, Content string }
				Rejected []struct{ Role, Content string }
			}
			if err := json.Unmarshal(r.Body, &pair); err != nil || len(pair.Prompt) != 2 || pair.Prompt[0].Role != "system" ||
				pair.Prompt[1].Content != "How do I reset my password?" || pair.Chosen[0].Role != "assistant" || !strings.HasPrefix(pair.Chosen[0].Content, "echo:") {
				t.Fatalf("JSONL export: %v %s", err, r.Body)
			}
			// Stop: a never-ending answer is cancelled on the agent.
			b.Run(chromedp.SetValue(`#pg-input`, "forever", chromedp.ByQuery), chromedp.Click(`[data-send]`, chromedp.ByQuery))
			b.Run(chromedp.Poll(`document.querySelector('[data-log=adapter]').textContent.includes('tick')`, nil, chromedp.WithPollingTimeout(20*time.Second)))
			b.Run(chromedp.Click(`[data-stop]`, chromedp.ByQuery),
				chromedp.Poll(`document.querySelector('[data-log=base]').textContent.includes('[stopped]')`, nil, chromedp.WithPollingTimeout(20*time.Second)))
			for range 2 { // both sides' generations stop on the agent
				select {
				case <-a.cancelled:
				case <-time.After(30 * time.Second):
					t.Fatal("the agent was not told to stop")
				}
			}
			var overflow bool
			b.Run(chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth`, &overflow))
			if overflow {
				t.Fatalf("the playground scrolls sideways at %d px", vp.w)
			}
			var voteShown bool
			b.Run(chromedp.Evaluate(`!document.querySelector('[data-vote]').hidden && document.querySelector('[data-vote]').offsetParent !== null`, &voteShown))
			if voteShown {
				t.Fatal("the vote is offered for stopped answers")
			}
			b.Screenshot("stopped")
		})
	}
}
