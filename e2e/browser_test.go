package e2e

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserAuth: sign up, see the dashboard, log out, log in again, in a
// real Chromium, with a screenshot of each page (desktop and phone).
func TestBrowserAuth(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 860}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b := testserver.NewBrowser(t, vp.w, vp.h)
			email := vp.name + "@example.com"
			b.Run(chromedp.Navigate(s.URL + "/"))
			b.Run(chromedp.WaitVisible(`input[name=email]`, chromedp.ByQuery))
			b.Screenshot("login")
			b.Run(chromedp.Navigate(s.URL+"/signup"), chromedp.WaitVisible(`input[name=password]`, chromedp.ByQuery))
			// A too-short password is explained on the page.
			b.Run(chromedp.SetValue(`#email`, email, chromedp.ByQuery), chromedp.SetValue(`#password`, "short", chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('#password').removeAttribute('minlength')`, nil),
				chromedp.Submit(`form`, chromedp.ByQuery), chromedp.WaitVisible(`.alert-error`, chromedp.ByQuery))
			if txt := b.Text(`form`); !strings.Contains(txt, "at least 8 characters") {
				t.Fatalf("signup error not shown: %q", txt)
			}
			b.Screenshot("signup-error")
			b.Run(chromedp.SetValue(`#email`, email, chromedp.ByQuery), chromedp.SetValue(`#password`, "correct horse battery", chromedp.ByQuery),
				chromedp.Submit(`form`, chromedp.ByQuery), chromedp.WaitVisible(`[data-stat=datasets]`, chromedp.ByQuery))
			if vp.name == "desktop" {
				if got := b.Text(`[data-user-email]`); got != email {
					t.Fatalf("dashboard shows user %q", got)
				}
			}
			b.Screenshot("dashboard")
			b.Run(chromedp.Navigate(s.URL+"/settings"), chromedp.WaitVisible(`#token-name`, chromedp.ByQuery),
				chromedp.SetValue(`#token-name`, "browser token", chromedp.ByQuery), chromedp.Submit(`#token-name`, chromedp.ByQuery),
				chromedp.WaitVisible(`[data-new-token]`, chromedp.ByQuery))
			if tok := b.Text(`[data-new-token]`); !strings.HasPrefix(strings.TrimSpace(tok), "br_") {
				t.Fatalf("new token not shown: %q", tok)
			}
			b.Screenshot("settings")
			if vp.name == "desktop" {
				// Outbound notifications: save a webhook, see its signing secret.
				b.Run(chromedp.Navigate(s.URL+"/settings/notifications"), chromedp.WaitVisible(`#webhook_url`, chromedp.ByQuery),
					chromedp.SetValue(`#webhook_url`, "https://hooks.example.com/brightrun", chromedp.ByQuery),
					chromedp.Click(`#channels-form button[type=submit]`, chromedp.ByQuery),
					chromedp.WaitVisible(`[data-reveal]`, chromedp.ByQuery), chromedp.Click(`[data-reveal]`, chromedp.ByQuery))
				if sec := b.Text(`[data-secret]`); !strings.HasPrefix(sec, "whsec_") || strings.Contains(sec, "•") {
					t.Fatalf("webhook secret not revealed: %q", sec)
				}
				b.Screenshot("settings-notifications")
			}
			b.Run(chromedp.Click(`[data-testid=logout]`, chromedp.ByQuery), chromedp.WaitVisible(`input[name=email]`, chromedp.ByQuery))
			var loc string
			b.Run(chromedp.Location(&loc))
			if !strings.Contains(loc, "/login") {
				t.Fatalf("after logout at %s", loc)
			}
			b.Run(chromedp.SetValue(`#email`, email, chromedp.ByQuery), chromedp.SetValue(`#password`, "correct horse battery", chromedp.ByQuery),
				chromedp.Submit(`form`, chromedp.ByQuery), chromedp.WaitVisible(`[data-stat=datasets]`, chromedp.ByQuery))
			b.Run(chromedp.Navigate(s.URL+"/does-not-exist"), chromedp.WaitVisible(`.error-page`, chromedp.ByQuery))
			b.Screenshot("404")
		})
	}
}
