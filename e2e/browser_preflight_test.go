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

// waitJS polls a JavaScript condition in the page (Chromium renders and
// fetches asynchronously; there is no page event to wait on for "the
// estimate was redrawn").
func waitJS(t *testing.T, b *testserver.Browser, cond string) {
	t.Helper()
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
		time.Sleep(100 * time.Millisecond) // real-time dependency: see above
	}
}

func setInput(id, value string) chromedp.Action {
	return chromedp.Evaluate(`(() => { const r = document.querySelector('#`+id+`'); r.value = '`+value+`'; r.dispatchEvent(new Event('input', {bubbles: true})); })()`, nil)
}

// TestBrowserTruncationWarning: a max_seq_length that drops examples is
// warned in words on the configure page, Start stays disabled, a forced
// submit is refused by the server (allow_truncation), the consent box
// enables Start, and the one-click fix sets a length that keeps all.
// Desktop and phone width.
func TestBrowserTruncationWarning(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "trunc@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 1000}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b := testserver.NewBrowser(t, vp.w, vp.h)
			b.SignIn(s.URL, "/login", "trunc@example.com", "correct horse battery")
			b.Run(chromedp.Navigate(s.URL+"/training/configure?datasetId="+ds), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
			waitJS(t, b, `!!document.querySelector('#configure').dataset.estimateVersion`)
			b.Run(setInput("max_seq_length", "256"))
			waitJS(t, b, `!document.querySelector('[data-preflight]').hidden && document.querySelector('[data-preflight]').textContent.startsWith('256 tokens drops')`)
			msg := b.Text(`[data-preflight] p`)
			if !strings.Contains(msg, "of 44 examples") || !strings.Contains(msg, "leaves no validation split") || !strings.Contains(msg, "keeps all") {
				t.Fatalf("warning: %q", msg)
			}
			var disabled bool
			b.Run(chromedp.Evaluate(`document.querySelector('[data-start]').disabled`, &disabled))
			if !disabled {
				t.Fatal("Start is enabled for a configuration that drops examples")
			}
			if got := b.Text(`.preset[aria-checked=true]`); !strings.Contains(got, "Custom") {
				t.Fatalf("editing max_seq_length left preset %q highlighted", got)
			}
			b.Screenshot("warned")
			// Forced past the disabled button: the server refuses without consent.
			b.Run(chromedp.Evaluate(`window.confirm = () => true; document.querySelector('[data-start]').disabled = false`, nil),
				chromedp.Click(`[data-start]`, chromedp.ByQuery))
			waitJS(t, b, `!document.querySelector('[data-errors]').hidden`)
			if e := b.Text(`[data-errors]`); !strings.Contains(e, "allow truncation") || !strings.Contains(e, "would be dropped") {
				t.Fatalf("refusal shown as %q", e)
			}
			// The consent box enables Start.
			b.Run(chromedp.Click(`#allow_truncation`, chromedp.ByQuery))
			waitJS(t, b, `!document.querySelector('[data-start]').disabled`)
			// The one-click fix: the suggested length, no warning.
			b.Run(chromedp.Click(`[data-fix-seq]`, chromedp.ByQuery))
			waitJS(t, b, `document.querySelector('[data-preflight]').hidden && !document.querySelector('[data-start]').disabled`)
			var seq string
			b.Run(chromedp.Evaluate(`document.querySelector('#max_seq_length').value`, &seq))
			if seq == "256" || seq == "" {
				t.Fatalf("fix left max_seq_length at %q", seq)
			}
			b.Screenshot("fixed")
		})
	}
}
