package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// webhookSink records the deliveries a test server sends.
type webhookSink struct {
	mu   sync.Mutex
	got  []capturedHook
	srv  *httptest.Server
	seen chan struct{}
}

type capturedHook struct {
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

func newWebhookSink(t *testing.T) *webhookSink {
	k := &webhookSink{seen: make(chan struct{}, 100)}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := map[string]string{}
		for name := range r.Header {
			h[strings.ToLower(name)] = r.Header.Get(name)
		}
		k.mu.Lock()
		k.got = append(k.got, capturedHook{Body: string(b), Headers: h})
		k.mu.Unlock()
		k.seen <- struct{}{}
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// waitTypes waits for deliveries whose type field holds each of types.
func (k *webhookSink) waitTypes(t *testing.T, types ...string) []capturedHook {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		k.mu.Lock()
		var match []capturedHook
		have := map[string]bool{}
		for _, c := range k.got {
			var ev struct{ Type string }
			_ = json.Unmarshal([]byte(c.Body), &ev)
			for _, want := range types {
				if ev.Type == want {
					have[want] = true
					match = append(match, c)
				}
			}
		}
		k.mu.Unlock()
		if len(have) == len(types) {
			return match
		}
		select {
		case <-k.seen:
		case <-deadline:
			t.Fatalf("webhooks: got %d deliveries, want the types %v", len(k.got), types)
		}
	}
}

// TestOpenAIFineTuningPythonSDK runs OpenAI's fine-tuning guide with the
// official Python package (e2e/sdk/finetune_guide.py, openai pinned in
// trainer/requirements-test.txt), unmodified, against a running server: the
// bad-input, cancel and pause/resume steps before an agent runs, then the
// guide's job trained by a real agent on the tiny model. A job whose file
// fails validation after the job was created fails in validating_files
// naming the line. The fine_tuning.job.succeeded/.failed/.cancelled
// webhooks (Standard Webhooks option) verify with client.webhooks.unwrap().
func TestOpenAIFineTuningPythonSDK(t *testing.T) {
	te := newTrainerEnv(t)
	py := filepath.Join(filepath.Dir(te.exe), "python")
	if out, err := exec.Command(py, "-c", "import openai").CombinedOutput(); err != nil {
		if os.Getenv("BRIGHTRUN_REQUIRE_TRAINER") == "1" {
			t.Fatalf("the openai package is not installed in the trainer's venv (trainer/requirements-test.txt): %s", out)
		}
		t.Skipf("the openai package is not installed (pip install -r trainer/requirements-test.txt): %s", out)
	}
	sink := newWebhookSink(t)
	ao := agentapi.DefaultOptions
	ao.Lease, ao.Heartbeat, ao.Poll, ao.MaxWait, ao.CheckpointAt = 4*time.Second, time.Second, 200*time.Millisecond, 2*time.Second, 4
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{
		Env: map[string]string{"BRIGHTRUN_CATALOG": te.catalog, "BRIGHTRUN_WEBHOOK_ALLOW_PRIVATE": "true"},
		App: app.Options{AgentOptions: &ao, OutboundEvery: 200 * time.Millisecond}})
	u := s.SignUp(t, "pysdk@example.com")
	var settings struct {
		Settings struct {
			WebhookSecret string `json:"webhook_secret"`
			WebhookFormat string `json:"webhook_format"`
		}
	}
	u.MustJSON("PUT", "/api/settings/notifications", map[string]any{"webhook_url": sink.srv.URL, "webhook_format": "standard"}, 200, &settings)
	if settings.Settings.WebhookFormat != "standard" || settings.Settings.WebhookSecret == "" {
		t.Fatalf("settings: %+v", settings)
	}

	// A job created while its file is still uploading waits in
	// validating_files; the file then fails validation, and so does the job.
	bad, _ := os.ReadFile(badJSONL(t))
	up := createDataset(t, u, "late", "late.jsonl", int64(len(bad)))
	var ft struct {
		ID, Status string
		Error      *struct{ Code, Message, Param string }
	}
	r := u.Do("POST", "/v1/fine_tuning/jobs", map[string]any{"model": tinyModel, "training_file": "file-" + strings.ReplaceAll(up.Dataset.ID, "-", "")})
	if err := json.Unmarshal(r.Body, &ft); r.Status != 200 || err != nil || ft.Status != "validating_files" {
		t.Fatalf("create on an uploading file: %d %s", r.Status, r.Body)
	}
	if res := putFile(t, up, bytes.NewReader(bad), int64(len(bad))); res.StatusCode != 200 {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	u.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil, 200, nil)
	deadline := time.Now().Add(time.Minute)
	for ft.Status == "validating_files" && time.Now().Before(deadline) {
		// Real-time dependency: the validation worker runs on its own schedule.
		time.Sleep(100 * time.Millisecond)
		_ = json.Unmarshal(u.Do("GET", "/v1/fine_tuning/jobs/"+ft.ID, nil).Body, &ft)
	}
	if ft.Status != "failed" || ft.Error == nil || ft.Error.Code != "invalid_training_file" || ft.Error.Param != "training_file" || !strings.Contains(ft.Error.Message, "line 3") {
		t.Fatalf("job on a bad file: %+v %+v", ft, ft.Error)
	}

	env := append(os.Environ(), "BR_BASE_URL="+s.URL+"/v1", "BR_TOKEN="+apiToken(t, u), "BR_OTHER_TOKEN="+apiToken(t, s.SignUp(t, "pysdk-other@example.com")),
		"BR_TRAIN="+chatJSONL(t, 16), "BR_BAD="+badJSONL(t), "BR_MODEL="+tinyModel, "BR_WEBHOOK_SECRET="+settings.Settings.WebhookSecret,
		"OPENAI_BASE_URL=", "OPENAI_API_KEY=", "OPENAI_WEBHOOK_SECRET=")
	run := func(script string, args ...string) string {
		t.Helper()
		cmd := exec.Command(py, append([]string{filepath.Join(repoRoot(), "e2e", "sdk", script)}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, lastLines(string(out), 40))
		}
		return lines[len(lines)-1]
	}
	var prep struct{ File, Job string }
	if err := json.Unmarshal([]byte(run("finetune_guide.py", "prepare")), &prep); err != nil {
		t.Fatal(err)
	}
	te.startAgent(t, s, false) // it also serves the fine-tuned model afterwards
	var done struct {
		FineTunedModel string `json:"fine_tuned_model"`
	}
	if err := json.Unmarshal([]byte(run("finetune_guide.py", "train", prep.Job)), &done); err != nil || !strings.HasPrefix(done.FineTunedModel, "ft:"+tinyModel+":py-guide:") {
		t.Fatalf("train: %v %+v", err, done)
	}

	hooks := sink.waitTypes(t, "fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled")
	path := filepath.Join(t.TempDir(), "hooks.json")
	b, _ := json.Marshal(hooks)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var verified []struct{ Type, ID string }
	if err := json.Unmarshal([]byte(run("unwrap_webhooks.py", path)), &verified); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, v := range verified {
		ids[v.Type] = v.ID
	}
	if ids["fine_tuning.job.succeeded"] != prep.Job || ids["fine_tuning.job.failed"] != ft.ID || !strings.HasPrefix(ids["fine_tuning.job.cancelled"], "ftjob-") {
		t.Fatalf("verified webhooks: %+v (job %s, failed %s)", verified, prep.Job, ft.ID)
	}
}
