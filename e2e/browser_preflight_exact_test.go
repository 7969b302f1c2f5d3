package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/agentwork"
	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
	"github.com/dustin/go-humanize"
)

// TestBrowserExactPreflight: the configure page says the token counts are
// approximate while an agent counts them, then (without a reload) turns
// exact once a real local agent has run the preflight, and the truncation
// warning shows the exact numbers the API reports.
func TestBrowserExactPreflight(t *testing.T) {
	te := newTrainerEnv(t)
	wo := agentwork.DefaultOptions
	wo.Poll = 100 * time.Millisecond
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{Env: map[string]string{"BRIGHTRUN_CATALOG": longContextCatalog(t, te)},
		App: app.Options{WorkOptions: &wo}})
	c := s.SignUp(t, "exact-page@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	b := testserver.NewBrowser(t, 1280, 1100)
	b.SignIn(s.URL, "/login", "exact-page@example.com", "correct horse battery")
	b.Run(chromedp.Navigate(s.URL+"/training/configure?datasetId="+ds), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
	waitJS(t, b, `!!document.querySelector('#configure').dataset.estimateVersion`)
	b.Run(chromedp.Evaluate(`(() => { const m = document.querySelector('#base_model'); m.value = '`+tinyModel+`';
		m.dispatchEvent(new Event('change', {bubbles: true})); m.dispatchEvent(new Event('input', {bubbles: true})); })()`, nil),
		setInput("max_seq_length", "256"))
	waitJS(t, b, `document.querySelector('[data-est="token-basis"]').dataset.exact === 'false' && document.querySelector('[data-preflight] p')?.textContent.startsWith('256 tokens')`)
	if got := b.Text(`[data-est="token-basis"]`); !strings.Contains(got, "approximate") || !strings.Contains(got, "an agent is counting") {
		t.Fatalf("before the agent: %q", got)
	}
	if w := b.Text(`[data-preflight] p`); !strings.HasSuffix(w, "(estimated)") {
		t.Fatalf("approximate warning: %q", w)
	}
	b.Screenshot("approximate")

	startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--no-serve", "--preflight-models", tinyModel)
	waitJS(t, b, `document.querySelector('[data-est="token-basis"]').dataset.exact === 'true'`) // the page asks again every 5 s
	p := tinyEstimate(t, c, ds, 256)
	if !p.Exact {
		t.Fatalf("the page is exact but the API is not: %+v", p)
	}
	if w := b.Text(`[data-preflight] p`); w != p.Message || strings.Contains(w, "estimated") {
		t.Fatalf("page warning %q, API message %q", w, p.Message)
	}
	if got := b.Text(`[data-est="token-basis"]`); !strings.Contains(got, "exact") {
		t.Fatalf("after the agent: %q", got)
	}
	if fix := b.Text(`[data-fix-seq]`); fix != "Use "+humanize.Comma(int64(p.KeepAllMaxSeqLength))+" tokens" {
		t.Fatalf("one-click fix %q, exact keep-all %d", fix, p.KeepAllMaxSeqLength)
	}
	b.Screenshot("exact")
}
