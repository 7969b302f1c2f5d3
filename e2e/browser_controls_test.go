package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserControlsWithoutInlineHandlers drives the controls that used
// inline handlers (blocked by the page's CSP, so they did nothing): the
// datasets and jobs status filters, the models sort, and "Mark all read".
func TestBrowserControlsWithoutInlineHandlers(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	b := testserver.NewBrowser(t, 1280, 900)
	email := "controls@example.com"
	b.SignIn(s.URL, "/signup", email, "correct horse battery")

	// Choosing another option, as a user does, must submit the filter form
	// (captured here before it navigates, so the check is synchronous).
	for _, c := range []struct{ page, param string }{{"/datasets", "status"}, {"/training/jobs", "status"}, {"/models", "sort"}} {
		sel := `select[name=` + c.param + `]`
		var submitted bool
		b.Run(chromedp.Navigate(s.URL+c.page), chromedp.WaitVisible(sel, chromedp.ByQuery),
			chromedp.Evaluate(`(() => { const s = document.querySelector('`+sel+`'); let sent = false;
				s.form.addEventListener('submit', (e) => { sent = new FormData(s.form).has('`+c.param+`'); e.preventDefault() });
				s.selectedIndex = (s.selectedIndex + 1) % s.options.length;
				s.dispatchEvent(new Event('change', {bubbles: true})); return sent })()`, &submitted))
		if !submitted {
			t.Fatalf("%s: changing %s did not submit the form", c.page, c.param)
		}
	}

	u, err := s.App.Store.UserGetByEmail(store.AsSystem(context.Background()), email)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Store.NotificationCreate(store.AsSystem(context.Background()), store.NotificationCreateParams{At: time.Now().UTC(), UserID: u.ID,
		Type: "job_completed", Priority: "normal", Title: "Done", Message: "Your model is ready."}); err != nil {
		t.Fatal(err)
	}
	// The button is only rendered while something is unread: after the
	// click the page reloads without it.
	b.Run(chromedp.Navigate(s.URL+"/notifications"), chromedp.WaitVisible(`[data-reload-after]`, chromedp.ByQuery),
		chromedp.Click(`[data-reload-after]`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`[data-reload-after]`, chromedp.ByQuery))
	b.Screenshot("notifications-all-read")
}
