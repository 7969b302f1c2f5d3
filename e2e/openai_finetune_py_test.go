package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/store/testdb"
)

// TestOpenAIFineTuningPythonSDK runs OpenAI's fine-tuning guide with the
// official Python package (e2e/sdk/finetune_guide.py, openai pinned in
// trainer/requirements.txt), unmodified, against a running server: the
// bad-input, cancel and pause/resume steps before an agent runs, then the
// guide's job trained by a real agent on the tiny model, on both engines'
// first (SQLite; the Go SDK test covers the same routes).
func TestOpenAIFineTuningPythonSDK(t *testing.T) {
	te := newTrainerEnv(t)
	py := filepath.Join(filepath.Dir(te.exe), "python")
	if out, err := exec.Command(py, "-c", "import openai").CombinedOutput(); err != nil {
		if os.Getenv("BRIGHTRUN_REQUIRE_TRAINER") == "1" {
			t.Fatalf("the openai package is not installed in the trainer's venv (trainer/requirements.txt): %s", out)
		}
		t.Skipf("the openai package is not installed (pip install -r trainer/requirements.txt): %s", out)
	}
	s := loopServer(t, testdb.Engines()[0], te)
	u := s.SignUp(t, "pysdk@example.com")
	env := append(os.Environ(), "BR_BASE_URL="+s.URL+"/v1", "BR_TOKEN="+apiToken(t, u), "BR_OTHER_TOKEN="+apiToken(t, s.SignUp(t, "pysdk-other@example.com")),
		"BR_TRAIN="+chatJSONL(t, 16), "BR_BAD="+badJSONL(t), "BR_MODEL="+tinyModel, "OPENAI_BASE_URL=", "OPENAI_API_KEY=")
	script := filepath.Join(repoRoot(), "e2e", "sdk", "finetune_guide.py")
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(py, append([]string{script}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var res map[string]any
		if err != nil || json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil {
			t.Fatalf("finetune_guide.py %s: %v\n%s", args[0], err, lastLines(string(out), 40))
		}
		return res
	}
	prep := run("prepare")
	te.startAgent(t, s, true)
	done := run("train", prep["job"].(string))
	if !strings.HasPrefix(done["fine_tuned_model"].(string), "ft:"+tinyModel+":py-guide:") {
		t.Fatalf("train: %v", done)
	}
}
