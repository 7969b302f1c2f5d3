package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// consoleWatch collects console errors, uncaught exceptions and browser log
// errors (CSP violations are logged with source "security") of a tab.
type consoleWatch struct {
	mu   sync.Mutex
	url  string
	errs []string
}

func watchConsole(t *testing.T, b *testserver.Browser) *consoleWatch {
	w := &consoleWatch{}
	chromedp.ListenTarget(b.Ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError || ev.Entry.Source == cdplog.SourceSecurity {
				msg = fmt.Sprintf("log %s/%s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg == "" {
			return
		}
		w.mu.Lock()
		w.errs = append(w.errs, w.url+": "+msg)
		w.mu.Unlock()
	})
	b.Run(cdplog.Enable(), runtime.Enable())
	return w
}

func (w *consoleWatch) at(url string) {
	w.mu.Lock()
	w.url = url
	w.mu.Unlock()
}

func (w *consoleWatch) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.errs
	w.errs = nil
	return e
}

// TestBrowserEveryPage: sign-up lands on the welcome dashboard, then every
// page (signed in and out) renders at desktop and phone width with no
// console error, uncaught exception or CSP violation; a screenshot of each.
func TestBrowserEveryPage(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b := testserver.NewBrowser(t, vp.w, vp.h)
			w := watchConsole(t, b)
			email := "pages-" + vp.name + "@example.com"
			w.at("/signup")
			b.SignIn(s.URL, "/signup", email, "correct horse battery")
			if h1 := b.Text(`h1`); h1 != "Welcome to BrightRun" {
				t.Fatalf("sign-up lands on %q", h1)
			}
			if flash := b.Text(`.content`); !strings.Contains(flash, "Welcome to BrightRun! Upload a dataset") || strings.Contains(flash, "Welcome back") {
				t.Fatalf("sign-up page: %q", flash)
			}
			c := s.Login(t, email)
			ds := readyDataset(t, c)
			bad := uploadBytes(t, c, "with-errors", "bad.jsonl", []byte(chatLines(4, true)))
			waitDataset(t, c, bad)
			req := jobReq(ds, mistral, "H100-80GB", 1, nil)
			req["allow_truncation"] = true
			var job struct{ Job struct{ ID string } }
			c.MustJSON("POST", "/api/jobs", req, 201, &job)
			model := finishedModel(t, s, c.UserID, ds, "pages-model")
			pages := []struct{ name, path, wait string }{
				{"dashboard", "/", `[data-stat=datasets]`},
				{"datasets", "/datasets", `[data-testid=dataset-cards]`},
				{"dataset-new", "/datasets/new", `#upload-form`},
				{"dataset-ready", "/datasets/" + ds, `[data-testid=stats]`},
				{"dataset-error", "/datasets/" + bad, `[data-testid=errors]`},
				{"training-jobs", "/training/jobs", `[data-testid=jobs]`},
				{"configure-choose", "/training/configure", `.content`},
				{"configure", "/training/configure?datasetId=" + ds, `.preset[aria-checked=true]`},
				{"job-queued", "/training/jobs/" + job.Job.ID, `[data-testid=queue]`},
				{"models", "/models", `.content`},
				{"model", "/models/" + model, `[data-testid=summary]`},
				{"costs", "/costs", `.content`},
				{"notifications", "/notifications", `.content`},
				{"settings", "/settings", `#token-name`},
				{"settings-notifications", "/settings/notifications", `#webhook_url`},
				{"agents", "/agents", `[data-testid=gpu-availability]`},
				{"help-agents", "/help/agents", `pre[data-copy]`},
			}
			for _, p := range pages {
				w.at(p.path)
				b.Run(chromedp.Navigate(s.URL+p.path), chromedp.WaitVisible(p.wait, chromedp.ByQuery))
				// Nothing is wider than the window (no sideways scrolling).
				var over int
				b.Run(chromedp.Evaluate(`document.documentElement.scrollWidth - window.innerWidth`, &over))
				if over > 0 {
					t.Errorf("%s is %d px wider than the %d px window", p.path, over, vp.w)
				}
				b.Screenshot(p.name)
			}
			// Signed out: login, sign-up and a 404 without navigation.
			b.Run(chromedp.Click(`[data-testid=logout]`, chromedp.ByQuery), chromedp.WaitVisible(`input[name=email]`, chromedp.ByQuery))
			for _, p := range []struct{ name, path, wait string }{{"login", "/login", `#email`}, {"signup", "/signup", `#email`}} {
				w.at(p.path)
				b.Run(chromedp.Navigate(s.URL+p.path), chromedp.WaitVisible(p.wait, chromedp.ByQuery))
				b.Screenshot(p.name + "-signed-out")
			}
			w.at("/no-such-page")
			b.Run(chromedp.Navigate(s.URL+"/no-such-page"), chromedp.WaitVisible(`.error-page`, chromedp.ByQuery))
			var navs int
			b.Run(chromedp.Evaluate(`document.querySelectorAll('.sidebar').length`, &navs))
			if navs != 0 {
				t.Fatal("the signed-out 404 page shows the navigation")
			}
			b.Screenshot("404-signed-out")
			// The one error expected: the 404 page's own status.
			var errs []string
			for _, e := range w.take() {
				if strings.HasPrefix(e, "/no-such-page: log network/error") && strings.Contains(e, "404") {
					continue
				}
				errs = append(errs, e)
			}
			if len(errs) > 0 {
				t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}
