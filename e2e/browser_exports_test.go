package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/agentwork"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// exportAgent is a Go double of a trainer agent at the protocol boundary
// (the real agent is exercised by TestExportMergedRealAgent): it claims
// export work over the real /api/agent/work calls, uploads an archive
// through the signed URL and completes, or fails with a reason.
type exportAgent struct {
	t        *testing.T
	url, tok string
}

func (a exportAgent) call(path string, body, out any) int {
	a.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", a.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		var env struct{ Data json.RawMessage }
		_ = json.NewDecoder(res.Body).Decode(&env)
		_ = json.Unmarshal(env.Data, out)
	}
	return res.StatusCode
}

func (a exportAgent) claim(formats ...string) agentwork.Work {
	a.t.Helper()
	var ans agentwork.ClaimAnswer
	if st := a.call("/api/agent/work/claim", agentwork.ClaimRequest{Kinds: []string{"export"}, BaseModels: []string{"*"}, ExportFormats: formats, WaitSeconds: 5}, &ans); st != 200 || ans.Work == nil {
		a.t.Fatalf("claim: %d %+v", st, ans)
	}
	return *ans.Work
}

func (a exportAgent) finish(w agentwork.Work, archive []byte) {
	a.t.Helper()
	var up agentwork.UploadAnswer
	if st := a.call("/api/agent/work/"+w.ID+"/upload", agentwork.UploadRequest{Size: int64(len(archive))}, &up); st != 200 {
		a.t.Fatalf("upload URL: %d", st)
	}
	req, _ := http.NewRequest("PUT", up.Upload.URL, bytes.NewReader(archive))
	for k, v := range up.Upload.Headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		a.t.Fatalf("PUT: %v %v", err, res)
	}
	res.Body.Close()
	sum := sha256.Sum256(archive)
	// A wrong checksum is refused: the server reads the stored archive back.
	if st := a.call("/api/agent/work/"+w.ID+"/complete", agentwork.CompleteRequest{Export: &agentwork.ExportResult{Size: int64(len(archive)), SHA256: strings.Repeat("0", 64)}}, nil); st != http.StatusConflict {
		a.t.Fatalf("complete with a wrong sha256: %d, want 409", st)
	}
	if st := a.call("/api/agent/work/"+w.ID+"/complete", agentwork.CompleteRequest{Export: &agentwork.ExportResult{Size: int64(len(archive)), SHA256: hex.EncodeToString(sum[:])}}, nil); st != 200 {
		a.t.Fatalf("complete: %d", st)
	}
}

// TestBrowserModelExports: the model page's Export section in a real
// Chromium: both buttons work from the keyboard, each export's state
// follows the agent without a reload (queued → being made by the agent →
// ready with its size and a Download link; failed with the agent's reason,
// a hint and a Retry that queues it again), and the section fits a 390 px
// phone screen.
func TestBrowserModelExports(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "exports-page@example.com")
	ds := createDataset(t, c, "support chats", "chats.jsonl", 10).Dataset.ID
	id := finishedModelWith(t, s, c.UserID, ds, "Support bot", `{"files":[{"name":"adapter_config.json","size":2,"storage_path":"`+c.UserID+`/x/adapter/adapter_config.json"},
		{"name":"adapter_model.safetensors","size":4,"storage_path":"`+c.UserID+`/x/adapter/adapter_model.safetensors"}]}`)
	tok, _, err := s.App.Agents.CreateAgent(t.Context(), "gpu-box-7")
	if err != nil {
		t.Fatal(err)
	}
	agent := exportAgent{t: t, url: s.URL, tok: tok}
	b := testserver.NewBrowser(t, 1280, 900)
	b.SignIn(s.URL, "/login", c.Email, "correct horse battery")
	b.Run(chromedp.Navigate(s.URL+"/models/"+id), chromedp.WaitVisible(`[data-export-empty]`, chromedp.ByQuery))
	row := func(format, status string) string {
		return `[data-export-row=` + format + `][data-status=` + status + `]`
	}
	wait := func(sel string) {
		t.Helper()
		b.Run(chromedp.WaitVisible(sel, chromedp.ByQuery))
	}
	// Keyboard: focus each button and press Enter.
	b.Run(chromedp.Focus(`[data-export=merged]`, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	wait(row("merged", "queued"))
	b.Run(chromedp.Focus(`[data-export=gguf]`, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	wait(row("gguf", "queued"))
	if txt := b.Text(`[data-export-msg]`); txt != "GGUF for llama.cpp / Ollama (f16) queued." {
		t.Fatalf("status message: %q", txt)
	}

	merged := agent.claim("merged", "gguf")
	wait(row("merged", "running"))
	if txt := b.Text(row("merged", "running")); !strings.Contains(txt, "Being made by gpu-box-7") {
		t.Fatalf("running row: %q", txt)
	}
	archive := bytes.Repeat([]byte("merged weights "), 100_000) // 1.5 MB
	agent.finish(merged, archive)
	wait(row("merged", "ready") + ` [data-export-download]`)
	if txt := b.Text(row("merged", "ready")); !strings.Contains(txt, "1.5 MB") || !strings.Contains(txt, "Support-bot-merged-bfloat16.tar.gz") {
		t.Fatalf("ready row: %q", txt)
	}
	var href string
	b.Run(chromedp.AttributeValue(row("merged", "ready")+` [data-export-download]`, "href", &href, nil, chromedp.ByQuery))
	if r := c.Do("GET", href, nil); r.Status != http.StatusFound {
		t.Fatalf("Download link %s: %d", href, r.Status)
	}

	gguf := agent.claim("merged", "gguf")
	if gguf.Export == nil || gguf.Export.Format != "gguf" || gguf.Export.GGUFType != "f16" || gguf.Export.Dtype != "float32" || len(gguf.Export.Adapter) != 2 {
		t.Fatalf("gguf order: %+v", gguf.Export)
	}
	if st := agent.call("/api/agent/work/"+gguf.ID+"/fail", agentwork.FailRequest{Message: "config: llama.cpp's converter failed on /work/merged: NotImplementedError: BPE pre-tokenizer was not recognized"}, nil); st != 200 {
		t.Fatalf("fail: %d", st)
	}
	wait(row("gguf", "failed") + ` [data-export-retry]`)
	if txt := b.Text(row("gguf", "failed")); !strings.Contains(txt, "pre-tokenizer was not recognized") || !strings.Contains(txt, "download the merged model instead") {
		t.Fatalf("failed row: %q", txt)
	}
	b.Screenshot("model-exports")
	b.Run(chromedp.Focus(row("gguf", "failed")+` [data-export-retry]`, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	wait(row("gguf", "queued"))

	// Phone width: the section fits without sideways scrolling.
	p := testserver.NewBrowser(t, 390, 844)
	p.SignIn(s.URL, "/login", c.Email, "correct horse battery")
	p.Run(chromedp.Navigate(s.URL+"/models/"+id), chromedp.WaitVisible(row("merged", "ready"), chromedp.ByQuery),
		chromedp.ScrollIntoView(`[data-exports]`, chromedp.ByQuery))
	var wide bool
	p.Run(chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth || document.querySelector('[data-exports]').getBoundingClientRect().right > window.innerWidth`, &wide))
	if wide {
		t.Fatal("the Export section is wider than a 390 px screen")
	}
	p.Screenshot("model-exports-phone")
}

// TestExportAgentProtocolErrors: what the server refuses from export agents
// and users, on both engines: a claim of export work without (or with an
// unknown) export format is a 400 naming export_formats; a merged-only agent
// is not handed a GGUF export; /upload and /complete belong to the agent
// holding the item (404 for another); a size outside 1 byte..5 GiB is a 400
// naming size; completing before the upload is a 409; the user's bad input
// is a 400 naming the field and a model without an adapter a 409.
func TestExportAgentProtocolErrors(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		c := s.SignUp(t, "export-proto@example.com")
		ds := createDataset(t, c, "chats", "chats.jsonl", 10).Dataset.ID
		id := finishedModelWith(t, s, c.UserID, ds, "Proto", `{"files":[{"name":"adapter_config.json","size":2,"storage_path":"`+c.UserID+`/x/adapter/adapter_config.json"},
		{"name":"adapter_model.safetensors","size":4,"storage_path":"`+c.UserID+`/x/adapter/adapter_model.safetensors"}]}`)
		bare := finishedModel(t, s, c.UserID, ds, "No adapter")
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{{map[string]any{}, "format"}, {map[string]any{"format": "onnx"}, "format"}, {map[string]any{"format": "gguf", "gguf_type": "q4_0"}, "gguf_type"},
			{map[string]any{"format": "merged", "dtype": "int8"}, "dtype"}} {
			r := c.Do("POST", "/api/models/"+id+"/exports", tc.body)
			if _, details := r.ErrorBody(); r.Status != 400 || details[tc.field] == nil {
				t.Errorf("%v: %d %s, want a 400 naming %s", tc.body, r.Status, r.Body, tc.field)
			}
		}
		if r := c.Do("POST", "/api/models/"+bare+"/exports", map[string]any{"format": "merged"}); r.Status != 409 || !strings.Contains(string(r.Body), "no finished adapter") {
			t.Errorf("a model without an adapter: %d %s", r.Status, r.Body)
		}
		requestExport(t, c, id, map[string]any{"format": "gguf"}, http.StatusAccepted)
		m := requestExport(t, c, id, map[string]any{"format": "merged"}, http.StatusAccepted)

		tok1, _, _ := s.App.Agents.CreateAgent(t.Context(), "one")
		tok2, _, _ := s.App.Agents.CreateAgent(t.Context(), "two")
		a1, a2 := exportAgent{t: t, url: s.URL, tok: tok1}, exportAgent{t: t, url: s.URL, tok: tok2}
		for _, formats := range [][]string{nil, {"onnx"}} {
			var out map[string]any
			if st := a1.call("/api/agent/work/claim", agentwork.ClaimRequest{Kinds: []string{"export"}, BaseModels: []string{"*"}, ExportFormats: formats}, &out); st != 400 {
				t.Errorf("claim with formats %v: %d, want 400", formats, st)
			}
		}
		w := a1.claim("merged") // the older GGUF export is skipped: this agent cannot make it
		if w.Export == nil || w.Export.ExportID != m.ID || w.Export.Format != "merged" || w.Export.Dtype != "bfloat16" || len(w.Export.Adapter) != 2 || w.LeaseSeconds != 7200 {
			t.Fatalf("merged-only claim: %+v (lease %v s)", w.Export, w.LeaseSeconds)
		}
		if st := a2.call("/api/agent/work/"+w.ID+"/upload", agentwork.UploadRequest{Size: 10}, nil); st != 404 {
			t.Errorf("upload URL for another agent's work: %d", st)
		}
		if st := a1.call("/api/agent/work/"+w.ID+"/upload", agentwork.UploadRequest{Size: 0}, nil); st != 400 {
			t.Errorf("upload of 0 bytes: %d", st)
		}
		if st := a1.call("/api/agent/work/"+w.ID+"/complete", agentwork.CompleteRequest{Export: &agentwork.ExportResult{Size: 10, SHA256: strings.Repeat("a", 64)}}, nil); st != 409 {
			t.Errorf("complete before the upload: %d", st)
		}
		if st := a1.call("/api/agent/work/"+w.ID+"/complete", agentwork.CompleteRequest{}, nil); st != 400 {
			t.Errorf("complete without the export result: %d", st)
		}
		if st := a2.call("/api/agent/work/"+w.ID+"/complete", agentwork.CompleteRequest{Export: &agentwork.ExportResult{Size: 10, SHA256: strings.Repeat("a", 64)}}, nil); st != 404 {
			t.Errorf("complete by another agent: %d", st)
		}
		// Deleting the export while it is made: its agent's calls, and its
		// upload URL (the local backend asks the export first), are refused.
		var up agentwork.UploadAnswer
		if st := a1.call("/api/agent/work/"+w.ID+"/upload", agentwork.UploadRequest{Size: 10}, &up); st != 200 {
			t.Fatalf("upload URL: %d", st)
		}
		c.MustJSON("DELETE", "/api/models/"+id+"/exports/"+m.ID, nil, 200, nil)
		req, _ := http.NewRequest("PUT", up.Upload.URL, strings.NewReader("0123456789"))
		for k, v := range up.Upload.Headers {
			req.Header.Set(k, v)
		}
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("PUT to a deleted export's upload URL: %v %v, want 403", err, res)
		} else {
			res.Body.Close()
		}
		if st := a1.call("/api/agent/work/"+w.ID+"/upload", agentwork.UploadRequest{Size: 10}, nil); st != 404 {
			t.Errorf("upload URL for a deleted export: %d", st)
		}
	})
}
