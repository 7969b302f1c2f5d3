package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserConfigure: on the configure page, moving the epochs slider
// changes the live estimate; presets highlight; Start Training queues a job
// and opens its monitor page.
func TestBrowserConfigure(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "cfg@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	b := testserver.NewBrowser(t, 1280, 1000)
	b.SignIn(s.URL, "/login", "cfg@example.com", "correct horse battery")
	b.Run(chromedp.Navigate(s.URL+"/datasets/"+ds), chromedp.Click(`[data-testid=start-training]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#configure`, chromedp.ByQuery), chromedp.WaitVisible(`.preset[aria-checked=true]`, chromedp.ByQuery))
	cost := func() string {
		var v string
		b.Run(chromedp.Evaluate(`document.querySelector('#configure').dataset.estimateVersion || ""`, &v))
		return v
	}
	waitFor := func(cond string) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var ok bool
			b.Run(chromedp.Evaluate(cond, &ok))
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", cond)
			}
			time.Sleep(100 * time.Millisecond) // real-time dependency: Chromium renders asynchronously
		}
	}
	waitFor(`!!document.querySelector('#configure').dataset.estimateVersion`)
	// The local CPU is the default device, and on it the CPU quick start is the default preset.
	var presetID string
	b.Run(chromedp.Evaluate(`document.querySelector('#configure').dataset.preset`, &presetID))
	if presetID != "quick-demo-cpu" || b.Text(`.preset[aria-checked=true] strong`) != "Quick demo (CPU)" {
		t.Fatalf("default preset on the CPU: %q", presetID)
	}
	before := b.Text(`[data-est=hours]`)
	tokensBefore := b.Text(`[data-est=tokens]`)
	v1 := cost()
	// Move the epochs slider from the preset's 1 to 10.
	b.Run(chromedp.Evaluate(`(() => { const r = document.querySelector('#num_epochs'); r.value = 10; r.dispatchEvent(new Event('input', {bubbles: true})); })()`, nil))
	waitFor(`document.querySelector('#configure').dataset.estimateVersion !== "` + v1 + `"`)
	after := b.Text(`[data-est=hours]`)
	if b.Text(`[data-est=tokens]`) == tokensBefore || after == before {
		t.Fatalf("estimate did not change with epochs: %s → %s (tokens %s)", before, after, tokensBefore)
	}
	if got := b.Text(`[data-out=num_epochs]`); got != "10" {
		t.Fatalf("epochs output shows %q", got)
	}
	var checks string
	b.Run(chromedp.Text(`[data-checklist]`, &checks, chromedp.ByQuery))
	if !strings.Contains(checks, "ready") || !strings.Contains(checks, "Fits") {
		t.Fatalf("checklist: %q", checks)
	}
	b.Screenshot("configure")
	// Pick the aggressive preset: it is highlighted and the values change.
	b.Run(chromedp.Click(`.preset[data-preset=aggressive]`, chromedp.ByQuery))
	waitFor(`document.querySelector('.preset[data-preset=aggressive]').getAttribute('aria-checked') === 'true' && document.querySelector('#lora_rank').value === '32'`)
	b.Run(chromedp.Evaluate(`(() => { const r = document.querySelector('#batch_size'); r.value = 1; r.dispatchEvent(new Event('input', {bubbles: true})); })()`, nil))
	waitFor(`!document.querySelector('[data-start]').disabled`)
	b.Run(chromedp.Evaluate(`window.confirm = () => true`, nil), chromedp.Click(`[data-start]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-job-id]`, chromedp.ByQuery))
	if st := b.Text(`[data-testid=status]`); st != "Queued" {
		t.Fatalf("new job status %q", st)
	}
	b.Screenshot("job-queued")
	b.Run(chromedp.Navigate(s.URL+"/training/jobs"), chromedp.WaitVisible(`[data-testid=jobs]`, chromedp.ByQuery))
	if got := b.Text(`[data-stat=active]`); got != "1" {
		t.Fatalf("active jobs card: %q", got)
	}
	b.Screenshot("jobs")
}
