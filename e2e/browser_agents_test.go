package e2e

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserAgents: the operator's Agents page lists a connected agent and
// creates a token (shown with a copy button); another user's page shows only
// which hardware can run; a queued H100 job with no H100 agent says so with
// a link to how to start one, and so does the configure checklist. Desktop
// and phone width.
func TestBrowserAgents(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	op := s.SignUp(t, "op@example.com")
	u := s.SignUp(t, "member@example.com")
	var created struct {
		Agent struct{ ID string }
		Token string
	}
	op.MustJSON("POST", "/api/agents", map[string]string{"name": "gpu-box-1"}, 201, &created)
	ac := s.NewClient(t)
	ac.Bearer = created.Token
	ac.MustJSON("POST", "/api/agent/claim", map[string]any{"agent": map[string]string{"name": "gpu-box-1", "version": "0.4.0", "hostname": "gpu-box-1.lan"},
		"capabilities": map[string]any{"gpu_type": "A100-80GB", "gpu_count": 2, "gpu_memory_gb": 80}, "wait_seconds": 0}, 200, nil)
	ds := readyDataset(t, u)
	req := jobReq(ds, mistral, "H100-80GB", 1, nil)
	req["allow_truncation"] = true
	var job struct{ Job struct{ ID string } }
	u.MustJSON("POST", "/api/jobs", req, 201, &job)

	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b := testserver.NewBrowser(t, vp.w, vp.h)
			b.SignIn(s.URL, "/login", "op@example.com", "correct horse battery")
			b.Run(chromedp.Navigate(s.URL+"/agents"), chromedp.WaitVisible(`[data-testid=agents]`, chromedp.ByQuery))
			row := b.Text(`[data-agent-id="` + created.Agent.ID + `"]`)
			for _, want := range []string{"gpu-box-1", "Online", "2× A100-80GB", "80 GB", "0.4.0", "idle"} {
				if !strings.Contains(row, want) {
					t.Fatalf("agent row lacks %q: %q", want, row)
				}
			}
			if avail := b.Text(`[data-testid=gpu-availability]`); !strings.Contains(avail, "NVIDIA A100 80 GB (SXM): can run now") || !strings.Contains(avail, "NVIDIA H100 80 GB (SXM): no agent connected") {
				t.Fatalf("availability: %q", avail)
			}
			b.Run(chromedp.SetValue(`#agent-name`, "box-"+vp.name, chromedp.ByQuery), chromedp.Click(`[data-agent-create] button[type=submit]`, chromedp.ByQuery),
				chromedp.WaitVisible(`[data-new-agent-token]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-agent-token] .copy-btn`, chromedp.ByQuery))
			if tok := b.Text(`[data-new-agent-token]`); !strings.HasPrefix(tok, "bra_") {
				t.Fatalf("new agent token: %q", tok)
			}
			b.Screenshot("agents-operator")
			b.Run(chromedp.Navigate(s.URL+"/help/agents"), chromedp.WaitVisible(`pre[data-copy]`, chromedp.ByQuery))
			b.Screenshot("help-agents")

			m := testserver.NewBrowser(t, vp.w, vp.h)
			m.SignIn(s.URL, "/login", "member@example.com", "correct horse battery")
			m.Run(chromedp.Navigate(s.URL+"/agents"), chromedp.WaitVisible(`[data-testid=gpu-availability]`, chromedp.ByQuery))
			var n int
			m.Run(chromedp.Evaluate(`document.querySelectorAll('[data-testid=agents], [data-agent-id]').length`, &n))
			if page := m.Text(`.content`); n != 0 || strings.Contains(page, "gpu-box-1") {
				t.Fatalf("a non-operator sees agents: %q", page)
			}
			m.Screenshot("agents-member")
			m.Run(chromedp.Navigate(s.URL+"/training/jobs/"+job.Job.ID), chromedp.WaitVisible(`[data-testid=queue]`, chromedp.ByQuery))
			q := m.Text(`[data-testid=queue]`)
			if !strings.Contains(q, "Next in the queue") || !strings.Contains(q, "No agent with H100-80GB is connected — how to start one") {
				t.Fatalf("queued job: %q", q)
			}
			var href string
			m.Run(chromedp.AttributeValue(`[data-testid=queue] a`, "href", &href, nil, chromedp.ByQuery))
			if href != "/help/agents" {
				t.Fatalf("how-to link: %q", href)
			}
			m.Screenshot("job-queued-no-agent")
			m.Run(chromedp.Navigate(s.URL+"/training/configure?datasetId="+ds), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
			waitJS(t, m, `!!document.querySelector('#configure').dataset.estimateVersion`)
			// The default is the local CPU: no CPU agent is connected in this test.
			waitJS(t, m, `!!document.querySelector('[data-check=agent_available].fail a[href="/help/agents"]')`)
			if got := m.Text(`[data-check=agent_available]`); !strings.HasPrefix(got, "No agent with CPU is connected") {
				t.Fatalf("configure checklist: %q", got)
			}
		})
	}
}
