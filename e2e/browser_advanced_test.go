package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserAdvancedSettings: a configuration that does not fit offers the
// setting the advice names (gradient checkpointing) as one click; the
// Advanced section's scheduler and target modules reach the job. Desktop and
// phone width.
func TestBrowserAdvancedSettings(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "adv@example.com")
	ds := readyDataset(t, c)
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 1000}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b := testserver.NewBrowser(t, vp.w, vp.h)
			b.SignIn(s.URL, "/login", "adv@example.com", "correct horse battery")
			b.Run(chromedp.Navigate(s.URL+"/training/configure?datasetId="+ds), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
			waitJS(t, b, `!!document.querySelector('#configure').dataset.estimateVersion`)
			// Mistral-7B, balanced (batch 8), on a 40 GB A100: does not fit.
			b.Run(chromedp.Click(`.preset[data-preset=balanced]`, chromedp.ByQuery),
				chromedp.SetValue(`#base_model`, mistral, chromedp.ByQuery), chromedp.SetValue(`#gpu_type`, "nvidia-a100-40gb", chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('#gpu_type').dispatchEvent(new Event('change', {bubbles: true}))`, nil),
				setInput("max_seq_length", "3328"))
			waitJS(t, b, `!!document.querySelector('[data-fix-checkpointing]')`)
			if got := b.Text(`[data-check=fits_in_memory]`); !strings.Contains(got, "gradient checkpointing (under Advanced") || strings.Contains(got, "gradient_checkpointing") {
				t.Fatalf("memory advice: %q", got)
			}
			b.Screenshot("does-not-fit")
			b.Run(chromedp.Click(`[data-fix-checkpointing]`, chromedp.ByQuery))
			waitJS(t, b, `document.querySelector('#gradient_checkpointing').checked && !document.querySelector('[data-check=fits_in_memory]').classList.contains('fail')`)
			b.Run(chromedp.Evaluate(`document.querySelector('details[data-advanced]').open = true`, nil),
				chromedp.SetValue(`#lr_scheduler`, "linear", chromedp.ByQuery), chromedp.SetValue(`#target_modules`, "attention", chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('#target_modules').dispatchEvent(new Event('input', {bubbles: true}))`, nil))
			waitJS(t, b, `!document.querySelector('[data-start]').disabled && document.querySelector('.preset[aria-checked=true]').dataset.preset === 'custom'`)
			b.Screenshot("advanced")
			b.Run(chromedp.Evaluate(`window.confirm = () => true`, nil), chromedp.Click(`[data-start]`, chromedp.ByQuery),
				chromedp.WaitVisible(`[data-job-id]`, chromedp.ByQuery))
			var id string
			b.Run(chromedp.AttributeValue(`[data-job-id]`, "data-job-id", &id, nil, chromedp.ByQuery))
			var job struct {
				Job struct {
					Hyperparameters json.RawMessage `json:"hyperparameters"`
				}
			}
			c.MustJSON("GET", "/api/jobs/"+id, nil, 200, &job)
			var h struct {
				GC     bool     `json:"gradient_checkpointing"`
				Sched  string   `json:"lr_scheduler"`
				Target []string `json:"target_modules"`
			}
			if err := json.Unmarshal(job.Job.Hyperparameters, &h); err != nil || !h.GC || h.Sched != "linear" || strings.Join(h.Target, ",") != "q_proj,k_proj,v_proj,o_proj" {
				t.Fatalf("job hyperparameters: %s", job.Job.Hyperparameters)
			}
		})
	}
	if r := c.Do("POST", "/api/jobs/estimate", jobReq(ds, smol, "cpu-local", 1, func(h map[string]any) { h["lr_scheduler"] = "step"; h["target_modules"] = []string{"lm_head"} })); r.Status != 400 {
		t.Fatalf("bad scheduler and modules: %d %s", r.Status, r.Body)
	} else if _, det := r.ErrorBody(); det["hyperparameters.lr_scheduler"] == nil || det["hyperparameters.target_modules"] == nil {
		t.Fatalf("errors name the fields: %s", r.Body)
	}
}
