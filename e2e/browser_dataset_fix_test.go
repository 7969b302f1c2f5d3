package e2e

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
)

func chatLines(n int, bad bool) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if bad && i == 2 {
			b.WriteString("{not json\n")
			continue
		}
		b.WriteString(`{"messages":[{"role":"user","content":"question number ` + strings.Repeat("x", i) + `"},{"role":"assistant","content":"answer"}]}` + "\n")
	}
	return b.String()
}

// TestDatasetErrorReportAndExamples: an errored dataset's errors download as
// CSV (formula-safe), and a ready dataset's examples page and search.
func TestDatasetErrorReportAndExamples(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "report@example.com")
	bad := uploadBytes(t, c, "=cmd|' /C calc'!A0", "bad.jsonl", []byte(chatLines(6, true)))
	if d := waitDataset(t, c, bad); d.Status != "error" {
		t.Fatalf("bad file: %+v", d)
	}
	r := c.Do("GET", "/api/datasets/"+bad+"/errors.csv", nil)
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if r.Status != 200 || err != nil || len(rows) != 2 || rows[0][0] != "line" || rows[1][0] != "3" || rows[0][6] != "1 of 1 errors" {
		t.Fatalf("errors.csv: %d %v %q", r.Status, err, r.Body)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="-cmd----C-calc--A0-errors.csv"`) {
		t.Fatalf("file name: %q", cd)
	}
	ds := readyDataset(t, c)
	type page struct {
		Examples []struct {
			ConversationKey string `json:"conversation_key"`
			Split           string
			Messages        []struct{ Role, Content string }
		}
		HasMore bool `json:"has_more"`
	}
	var p1, p9, found page
	c.MustJSON("GET", "/api/datasets/"+ds+"/examples?page=1&limit=5", nil, 200, &p1)
	c.MustJSON("GET", "/api/datasets/"+ds+"/examples?page=9&limit=5", nil, 200, &p9)
	if len(p1.Examples) != 5 || !p1.HasMore || len(p9.Examples) != 4 || p9.HasMore { // 44 examples
		t.Fatalf("pages: %d more=%v, %d more=%v", len(p1.Examples), p1.HasMore, len(p9.Examples), p9.HasMore)
	}
	val := 0
	for _, pg := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9} {
		var p page
		c.MustJSON("GET", "/api/datasets/"+ds+"/examples?limit=5&page="+string(rune('0'+pg)), nil, 200, &p)
		for _, e := range p.Examples {
			if e.Split == "validation" {
				val++
			}
		}
	}
	if val != 4 {
		t.Fatalf("%d validation examples across the pages, want 4", val)
	}
	word := strings.Fields(p9.Examples[3].Messages[len(p9.Examples[3].Messages)-1].Content)[0]
	c.MustJSON("GET", "/api/datasets/"+ds+"/examples?q="+word, nil, 200, &found)
	if len(found.Examples) == 0 {
		t.Fatalf("search %q found nothing", word)
	}
	for _, e := range found.Examples {
		hit := false
		for _, m := range e.Messages {
			hit = hit || strings.Contains(strings.ToLower(m.Content), strings.ToLower(word))
		}
		if !hit {
			t.Fatalf("search %q returned a non-matching example", word)
		}
	}
	if r := c.Do("GET", "/api/datasets/"+ds+"/examples?limit=500", nil); r.Status != 400 {
		t.Fatalf("limit 500: %d", r.Status)
	}
}

// TestBrowserDatasetFix: an errored dataset offers its error report and
// "Upload a corrected file", which keeps its name and description and
// replaces it; a ready dataset's conversations page and search. Desktop and
// phone width.
func TestBrowserDatasetFix(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "fix@example.com")
	ready := readyDataset(t, c)
	dir := t.TempDir()
	good := filepath.Join(dir, "fixed.jsonl")
	if err := os.WriteFile(good, []byte(chatLines(6, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, vp := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			bad := uploadBytes(t, c, "support-"+vp.name, "bad.jsonl", []byte(chatLines(6, true)))
			c.MustJSON("PATCH", "/api/datasets/"+bad, map[string]string{"description": "the March export"}, 200, nil)
			waitDataset(t, c, bad)
			b := testserver.NewBrowser(t, vp.w, vp.h)
			b.SignIn(s.URL, "/login", "fix@example.com", "correct horse battery")
			b.Run(chromedp.Navigate(s.URL+"/datasets"), chromedp.WaitVisible(`[data-dataset="`+bad+`"] [data-testid=error-count]`, chromedp.ByQuery))
			if got := b.Text(`[data-dataset="` + bad + `"] [data-testid=error-count]`); !strings.HasPrefix(got, "1 error") {
				t.Fatalf("card error count: %q", got)
			}
			b.Run(chromedp.Navigate(s.URL+"/datasets/"+bad), chromedp.WaitVisible(`[data-testid=replace]`, chromedp.ByQuery))
			var href string
			b.Run(chromedp.AttributeValue(`[data-testid=error-report]`, "href", &href, nil, chromedp.ByQuery))
			if href != "/api/datasets/"+bad+"/errors.csv" {
				t.Fatalf("error report link: %q", href)
			}
			b.Screenshot("dataset-error")
			b.Run(chromedp.Click(`[data-testid=replace]`, chromedp.ByQuery), chromedp.WaitVisible(`#upload-form[data-replace]`, chromedp.ByQuery))
			var name, desc string
			b.Run(chromedp.Value(`#name`, &name, chromedp.ByQuery), chromedp.Value(`#description`, &desc, chromedp.ByQuery))
			if name != "support-"+vp.name || desc != "the March export" {
				t.Fatalf("corrected upload form: name %q description %q", name, desc)
			}
			b.Screenshot("dataset-replace")
			b.Run(chromedp.SetUploadFiles(`#file`, []string{good}, chromedp.ByQuery), chromedp.Click(`#upload-submit`, chromedp.ByQuery),
				chromedp.WaitVisible(`[data-testid=start-training]`, chromedp.ByQuery))
			if h1 := b.Text(`h1`); !strings.HasPrefix(h1, "support-"+vp.name) {
				t.Fatalf("new dataset page: %q", h1)
			}
			if r := c.Do("GET", "/api/datasets/"+bad, nil); r.Status != 404 {
				t.Fatalf("the dataset with errors is still there: %d", r.Status)
			}
			// The conversation browser on a ready dataset.
			b.Run(chromedp.Navigate(s.URL+"/datasets/"+ready), chromedp.WaitVisible(`[data-preview-next]`, chromedp.ByQuery),
				chromedp.Click(`[data-preview-next]`, chromedp.ByQuery))
			waitJS(t, b, `document.querySelectorAll('[data-example]').length === 5 && document.querySelector('[data-preview-status]').textContent.startsWith('Examples 1–5')`)
			b.Run(chromedp.Click(`[data-preview-next]`, chromedp.ByQuery))
			waitJS(t, b, `document.querySelector('[data-preview-status]').textContent.startsWith('Examples 6–10') && !document.querySelector('[data-preview-prev]').hidden`)
			b.Run(chromedp.SetValue(`[data-preview-search] input`, "will", chromedp.ByQuery), chromedp.Click(`[data-preview-search] button`, chromedp.ByQuery))
			waitJS(t, b, `document.querySelector('[data-preview-status]').textContent.includes('matching “will”')`)
			b.Screenshot("dataset-browse")
		})
	}
}
