package e2e

import (
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

// TestBrowserDatasets uploads the real EQ-12 file through the page (straight
// to the signed URL, with progress), follows validation to the detail page,
// and checks the list, detail and notifications pages.
func TestBrowserDatasets(t *testing.T) {
	file := testdata.Path(t, testdata.EQ12JSON)
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	b := testserver.NewBrowser(t, 1280, 900)
	b.SignIn(s.URL, "/signup", "ui@example.com", "correct horse battery")
	b.Run(chromedp.Navigate(s.URL+"/datasets"), chromedp.WaitVisible(`.empty`, chromedp.ByQuery))
	b.Screenshot("datasets-empty")
	b.Run(chromedp.Click(`[data-testid=upload]`, chromedp.ByQuery), chromedp.WaitVisible(`#file`, chromedp.ByQuery),
		chromedp.SetUploadFiles(`#file`, []string{file}, chromedp.ByQuery))
	var name string
	b.Run(chromedp.Value(`#name`, &name, chromedp.ByQuery))
	if name != "eq-12-conversations.v4" {
		t.Fatalf("name not prefilled from the file: %q", name)
	}
	b.Screenshot("dataset-new")
	b.Run(chromedp.Click(`#upload-submit`, chromedp.ByQuery), chromedp.WaitVisible(`[data-testid=stats]`, chromedp.ByQuery))
	if got := b.Text(`[data-stat=trainable]`); got != "44" {
		t.Fatalf("trainable examples shown: %q", got)
	}
	if got := b.Text(`[data-stat=conversations]`); got != "12" {
		t.Fatalf("conversations shown: %q", got)
	}
	if st := b.Text(`[data-testid=status]`); st != "Ready" {
		t.Fatalf("status %q", st)
	}
	var chat int
	b.Run(chromedp.Evaluate(`document.querySelectorAll('.bubble').length`, &chat))
	if chat == 0 {
		t.Fatal("no sample conversation bubbles")
	}
	b.Screenshot("dataset-detail")
	b.Run(chromedp.Navigate(s.URL+"/datasets"), chromedp.WaitVisible(`[data-testid=dataset-cards]`, chromedp.ByQuery))
	if txt := b.Text(`[data-testid=dataset-cards]`); !strings.Contains(txt, "eq-12-conversations.v4") || !strings.Contains(txt, "44") {
		t.Fatalf("list card: %q", txt)
	}
	b.Screenshot("datasets")
	b.Run(chromedp.Navigate(s.URL+"/notifications"), chromedp.WaitVisible(`.notif`, chromedp.ByQuery))
	if txt := b.Text(`.notif`); !strings.Contains(txt, "Dataset ready") {
		t.Fatalf("notification: %q", txt)
	}
	var bell string
	b.Run(chromedp.WaitVisible(`[data-bell-count]`, chromedp.ByQuery), chromedp.Text(`[data-bell-count]`, &bell, chromedp.ByQuery))
	if bell != "1" {
		t.Fatalf("bell count %q", bell)
	}
	b.Screenshot("notifications")
	// The bell's dropdown lists it; opening it marks it read.
	b.Run(chromedp.Click(`[data-bell]`, chromedp.ByQuery), chromedp.WaitVisible(`.bell-item.unread`, chromedp.ByQuery))
	b.Screenshot("bell")
	b.Run(chromedp.Click(`.bell-item`, chromedp.ByQuery), chromedp.WaitVisible(`[data-testid=stats]`, chromedp.ByQuery))
	var unread struct {
		UnreadCount int `json:"unread_count"`
	}
	c := s.Login(t, "ui@example.com")
	c.MustJSON("GET", "/api/notifications", nil, 200, &unread)
	if unread.UnreadCount != 0 {
		t.Fatalf("opening the notification did not mark it read: %d unread", unread.UnreadCount)
	}
	b.Run(chromedp.Navigate(s.URL+"/costs"), chromedp.WaitVisible(`[data-testid=budget]`, chromedp.ByQuery),
		chromedp.SetValue(`#monthly_budget`, "25", chromedp.ByQuery), chromedp.Click(`#budget-form button`, chromedp.ByQuery))
	b.Run(chromedp.WaitVisible(`[data-testid=budget] .progress`, chromedp.ByQuery))
	if txt := b.Text(`[data-testid=budget]`); !strings.Contains(txt, "$25.00") {
		t.Fatalf("budget not saved: %q", txt)
	}
	b.Screenshot("costs")
}
