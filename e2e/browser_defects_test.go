package e2e

import (
	"net/url"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserPageDefects checks the fixes for the defects a new user hit
// (issue 15), desktop and phone: sign-up errors mark their field, sign-out
// says so, configure marks each invalid field with its message, CPU wording,
// the jobs list cost, the API token's copy button, and an expired session
// on the configure page offers a sign-in link back to it.
func TestBrowserPageDefects(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 1000}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			email := "defects-" + vp.name + "@example.com"
			b := testserver.NewBrowser(t, vp.w, vp.h)
			// Sign-up: a bad password marks the password field, with its message.
			b.Run(chromedp.Navigate(s.URL+"/signup"), chromedp.WaitVisible(`#email`, chromedp.ByQuery),
				chromedp.SetValue(`#email`, email, chromedp.ByQuery), chromedp.SetValue(`#password`, "short", chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('#password').removeAttribute('minlength')`, nil),
				chromedp.Submit(`form`, chromedp.ByQuery), chromedp.WaitVisible(`#password[aria-invalid=true]`, chromedp.ByQuery))
			if msg := b.Text(`#password-error`); !strings.Contains(msg, "at least 8 characters") {
				t.Fatalf("password error: %q", msg)
			}
			b.SignIn(s.URL, "/signup", email, "correct horse battery")
			c := s.Login(t, email)
			ds := readyDataset(t, c)
			c.MustJSON("POST", "/api/jobs", jobReq(ds, smol, "cpu-local", 1, nil), 201, nil)

			// The jobs list's cost cell is money, not a Go format error.
			b.Run(chromedp.Navigate(s.URL+"/training/jobs"), chromedp.WaitVisible(`[data-testid=jobs]`, chromedp.ByQuery))
			if row := b.Text(`[data-testid=jobs] tbody`); strings.Contains(row, "%!") || !strings.Contains(row, "$0.00") {
				t.Fatalf("jobs list: %q", row)
			}
			// Configure: CPU wording, and an invalid value marked under its field.
			b.Run(chromedp.Navigate(s.URL+"/training/configure?datasetId="+ds), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
			waitJS(t, b, `!!document.querySelector('#configure').dataset.estimateVersion`)
			if note := b.Text(`[data-gpu-note]`); note != "16 GB RAM" {
				t.Fatalf("CPU note: %q", note)
			}
			if cost := b.Text(`[data-est=cost]`) + " " + b.Text(`[data-est=range]`); cost != "Free (local CPU)" {
				t.Fatalf("CPU cost: %q", cost)
			}
			if mem := b.Text(`[data-check=fits_in_memory]`); !strings.HasPrefix(mem, "Fits in memory") {
				t.Fatalf("memory check: %q", mem)
			}
			b.Run(setInput("lora_dropout", "0.9"))
			waitJS(t, b, `document.querySelector('#lora_dropout').getAttribute('aria-invalid') === 'true'`)
			if msg := b.Text(`#lora_dropout-error`); !strings.Contains(msg, "between 0 and 0.5") {
				t.Fatalf("field message: %q", msg)
			}
			var boxHidden bool
			b.Run(chromedp.Evaluate(`document.querySelector('[data-errors]').hidden`, &boxHidden))
			if !boxHidden {
				t.Fatalf("field errors also shown run together: %q", b.Text(`[data-errors]`))
			}
			b.Screenshot("configure-invalid-field")
			b.Run(setInput("lora_dropout", "0.1"))
			waitJS(t, b, `!document.querySelector('[aria-invalid]')`)
			// The session ends while the page is open: a sign-in link back here.
			b.Run(network.ClearBrowserCookies(), setInput("num_epochs", "4"))
			waitJS(t, b, `!!document.querySelector('[data-errors] a[href^="/login?next="]')`)
			if msg := b.Text(`[data-errors]`); strings.Contains(msg, "Bearer") || !strings.Contains(msg, "session has ended") {
				t.Fatalf("expired session: %q", msg)
			}
			var href string
			b.Run(chromedp.AttributeValue(`[data-errors] a`, "href", &href, nil, chromedp.ByQuery))
			if next, _ := url.QueryUnescape(strings.TrimPrefix(href, "/login?next=")); next != "/training/configure?datasetId="+ds {
				t.Fatalf("sign-in link returns to %q", next)
			}
			b.Screenshot("session-ended")
			b.Run(chromedp.Click(`[data-errors] a`, chromedp.ByQuery), chromedp.WaitVisible(`#email`, chromedp.ByQuery),
				chromedp.SetValue(`#email`, email, chromedp.ByQuery), chromedp.SetValue(`#password`, "correct horse battery", chromedp.ByQuery),
				chromedp.Submit(`form`, chromedp.ByQuery), chromedp.WaitVisible(`#configure`, chromedp.ByQuery))
			// A new API token comes with a copy button.
			b.Run(chromedp.Navigate(s.URL+"/settings"), chromedp.WaitVisible(`#token-name`, chromedp.ByQuery),
				chromedp.SetValue(`#token-name`, "laptop", chromedp.ByQuery), chromedp.Submit(`#token-name`, chromedp.ByQuery),
				chromedp.WaitVisible(`[data-new-token]`, chromedp.ByQuery), chromedp.WaitVisible(`.copy-wrap .copy-btn`, chromedp.ByQuery))
			// Signing out says so.
			b.Run(chromedp.Click(`[data-testid=logout]`, chromedp.ByQuery), chromedp.WaitVisible(`[data-testid=flash]`, chromedp.ByQuery))
			if f := b.Text(`[data-testid=flash]`); f != "You have signed out." {
				t.Fatalf("sign-out message: %q", f)
			}
			b.Screenshot("signed-out")
		})
	}
}
