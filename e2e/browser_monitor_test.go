package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserMonitor: while the real trainer agent trains, the monitor page
// shows progress and its loss chart grows (new points only); when the job
// completes, the page links to the model.
func TestBrowserMonitor(t *testing.T) {
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "mon@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 3)
	b := testserver.NewBrowser(t, 1280, 1100)
	b.SignIn(s.URL, "/login", "mon@example.com", "correct horse battery")
	b.Run(chromedp.Navigate(s.URL+"/training/jobs/"+id), chromedp.WaitVisible(`[data-chart]`, chromedp.ByQuery))
	te.startAgent(t, s, true)
	points := func() int {
		var v string
		b.Run(chromedp.Evaluate(`document.body.dataset.points || "0"`, &v))
		n, _ := strconv.Atoi(v)
		return n
	}
	waitUntil := func(what string, timeout time.Duration, ok func() bool) {
		deadline := time.Now().Add(timeout)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(300 * time.Millisecond) // real-time dependency: a real trainer and Chromium, each on its own schedule
		}
	}
	waitUntil("the first points", 3*time.Minute, func() bool { return points() >= 2 })
	first := points()
	b.Screenshot("monitor-running")
	var progress string
	b.Run(chromedp.Text(`[data-live=progress]`, &progress, chromedp.ByQuery))
	if progress == "0%" {
		t.Fatalf("progress not shown while points arrive: %q", progress)
	}
	waitUntil("the chart to grow", 2*time.Minute, func() bool { return points() > first })
	var canvases int
	b.Run(chromedp.Evaluate(`document.querySelectorAll('[data-chart] canvas').length`, &canvases))
	if canvases == 0 {
		t.Fatal("no chart canvas")
	}
	// The page reloads itself on completion and links to the model.
	b.Run(chromedp.WaitVisible(`[data-testid=model-link]`, chromedp.ByQuery))
	if st := b.Text(`[data-testid=status]`); st != "Completed" {
		t.Fatalf("final status %q", st)
	}
	b.Screenshot("monitor-completed")
	// The model page: rating, files, snippets, loss curve.
	b.Run(chromedp.Click(`[data-testid=model-link]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-testid=files]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-chart] canvas`, chromedp.ByQuery))
	if files := b.Text(`[data-testid=files]`); !strings.Contains(files, "adapter_model.safetensors") {
		t.Fatalf("model files: %q", files)
	}
	if sum := b.Text(`[data-testid=summary]`); !strings.Contains(sum, "tokens/s") || !strings.Contains(sum, "wall") {
		t.Fatalf("training summary: %q", sum)
	}
	if cfg := b.Text(`[data-testid=configuration]`); !strings.Contains(cfg, "Learning rate") || !strings.Contains(cfg, "eq12") {
		t.Fatalf("configuration: %q", cfg)
	}
	b.Screenshot("model")
	b.Run(chromedp.Navigate(s.URL+"/models"), chromedp.WaitVisible(`[data-testid=model-cards]`, chromedp.ByQuery))
	b.Screenshot("models")
}
