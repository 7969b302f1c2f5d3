package e2e

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserRunAgain: a named job shows its name on the jobs list and its
// page; once finished (here cancelled) it offers "Run again with these
// settings", which opens the configure page prefilled with its settings and
// name. Desktop and phone width.
func TestBrowserRunAgain(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "again@example.com")
	ds := readyDataset(t, c)
	// 3,328 tokens keep every EQ-12 example; on the 16 GB local CPU that
	// length fits only with gradient checkpointing.
	req := jobReq(ds, smol, "cpu-local", 1, func(h map[string]any) {
		h["num_epochs"] = 7
		h["max_seq_length"] = 3328
		h["lora_rank"] = 24
		h["gradient_checkpointing"] = true
	})
	req["preset_id"] = "custom"
	req["name"] = "  Estate planning, long context  "
	if r := c.Do("POST", "/api/jobs", map[string]any{"dataset_id": ds, "name": strings.Repeat("x", 201), "hyperparameters": map[string]any{"base_model": smol},
		"gpu_config": map[string]any{"gpu_type": "cpu-local"}}); r.Status != 400 {
		t.Fatalf("a 201-character name: %d %s", r.Status, r.Body)
	}
	var job struct {
		Job struct{ ID, Name string }
	}
	c.MustJSON("POST", "/api/jobs", req, 201, &job)
	if job.Job.Name != "Estate planning, long context" {
		t.Fatalf("name stored as %q", job.Job.Name)
	}
	c.MustJSON("POST", "/api/jobs/"+job.Job.ID+"/cancel", nil, 200, nil)
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b := testserver.NewBrowser(t, vp.w, vp.h)
			b.SignIn(s.URL, "/login", "again@example.com", "correct horse battery")
			b.Run(chromedp.Navigate(s.URL+"/training/jobs"), chromedp.WaitVisible(`[data-testid=jobs]`, chromedp.ByQuery))
			if got := b.Text(`[data-testid=jobs] tbody`); !strings.Contains(got, "Estate planning, long context") {
				t.Fatalf("jobs list: %q", got)
			}
			b.Run(chromedp.Navigate(s.URL+"/training/jobs/"+job.Job.ID), chromedp.WaitVisible(`[data-testid=run-again]`, chromedp.ByQuery))
			if h1 := b.Text(`h1`); !strings.HasPrefix(h1, "Estate planning, long context") {
				t.Fatalf("job page title: %q", h1)
			}
			b.Screenshot("job-cancelled")
			b.Run(chromedp.Click(`[data-testid=run-again]`, chromedp.ByQuery), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
			waitJS(t, b, `document.querySelector('#job_name').value === 'Estate planning, long context' && !!document.querySelector('#configure').dataset.estimateVersion`)
			var got []string
			b.Run(chromedp.Evaluate(`['num_epochs','max_seq_length','lora_rank','gpu_type'].map(id => document.querySelector('#'+id).value).concat([document.querySelector('.preset[aria-checked=true]').dataset.preset, String(document.querySelector('#gradient_checkpointing').checked)])`, &got))
			if strings.Join(got, ",") != "7,3328,24,cpu-local,custom,true" {
				t.Fatalf("prefilled: %v", got)
			}
			b.Screenshot("configure-prefilled")
		})
	}
}
