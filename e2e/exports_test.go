package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/google/uuid"
)

type exportView struct {
	ID        string `json:"id"`
	Format    string `json:"format"`
	Status    string `json:"status"`
	Agent     string `json:"agent"`
	Error     string `json:"error"`
	Hint      string `json:"hint"`
	FileName  string `json:"file_name"`
	SizeBytes int64  `json:"size_bytes"`
	SHA256    string `json:"sha256"`
	Download  string `json:"download_url"`
}

// requestExport posts an export request and checks the status (202 queued now, 200 existing).
func requestExport(t *testing.T, c *testserver.Client, modelID string, body map[string]any, status int) exportView {
	t.Helper()
	var out struct{ Export exportView }
	c.MustJSON("POST", "/api/models/"+modelID+"/exports", body, status, &out)
	return out.Export
}

// waitExport polls the list until the export leaves queued/running.
func waitExport(t *testing.T, c *testserver.Client, modelID, id string, timeout time.Duration) exportView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out struct{ Exports []exportView }
		c.MustJSON("GET", "/api/models/"+modelID+"/exports", nil, 200, &out)
		for _, e := range out.Exports {
			if e.ID == id && (e.Status == "ready" || e.Status == "failed") {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s not finished after %s: %+v", id, timeout, out.Exports)
		}
		// Real-time dependency: a real trainer process makes the export on
		// its own schedule; poll the list as the model page does.
		time.Sleep(500 * time.Millisecond)
	}
}

// downloadExport follows the download redirect to the signed URL, checks
// the archive's size and sha256 against the export, and unpacks it.
func downloadExport(t *testing.T, c *testserver.Client, modelID string, e exportView) string {
	t.Helper()
	r := c.Do("GET", e.Download, nil)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusFound || loc == "" {
		t.Fatalf("download: %d %s", r.Status, r.Body)
	}
	res, err := http.Get(loc)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("signed download: %v %v", err, res)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum := sha256.Sum256(data)
	if int64(len(data)) != e.SizeBytes || hex.EncodeToString(sum[:]) != e.SHA256 {
		t.Fatalf("downloaded %d bytes sha256 %x; the export says %d bytes %s", len(data), sum, e.SizeBytes, e.SHA256)
	}
	dir := t.TempDir()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	top := strings.TrimSuffix(e.FileName, ".tar.gz")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h.Name, top+"/") || strings.Contains(h.Name, "..") || h.Typeflag != tar.TypeReg {
			t.Fatalf("archive entry %q (type %c): want regular files under %s/", h.Name, h.Typeflag, top)
		}
		p := filepath.Join(dir, h.Name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		f, _ := os.Create(p)
		_, _ = io.Copy(f, tr)
		f.Close()
	}
	return filepath.Join(dir, top)
}

// hasConverter asks the trainer whether llama.cpp's converter is installed
// (BRIGHTRUN_REQUIRE_LLAMA_CPP=1, set by CI, makes its absence a failure).
func hasConverter(t *testing.T, te trainerEnv) bool {
	t.Helper()
	py := filepath.Join(filepath.Dir(te.exe), "python")
	out, err := exec.Command(py, "-c", "from brightrun_trainer.export import has_converter; print(has_converter())").CombinedOutput()
	if err != nil {
		t.Fatalf("has_converter: %v %s", err, out)
	}
	ok := strings.TrimSpace(string(out)) == "True"
	if !ok && os.Getenv("BRIGHTRUN_REQUIRE_LLAMA_CPP") == "1" {
		t.Fatal("BRIGHTRUN_REQUIRE_LLAMA_CPP=1 but llama.cpp's converter is missing: run scripts/llama-cpp-converter.sh")
	}
	return ok
}

// TestExportMergedRealAgent: a tiny adapter trained by the real agent is
// exported as a merged model by the same agent: the request is queued once
// (asking again returns it), the list shows it ready with the agent's name,
// size and sha256, the download redirects to a signed URL whose archive
// matches them, and the unpacked model loads with transformers alone and
// generates the same greedy tokens as base + PEFT adapter. A GGUF export of
// the tiny model (whose home-made tokenizer llama.cpp does not know) fails
// with the converter's reason and a hint; deleting the ready export removes
// its file. SQLite only: the store suite covers both engines.
func TestExportMergedRealAgent(t *testing.T) {
	te := newTrainerEnv(t)
	gguf := hasConverter(t, te)
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "export@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 1)
	startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--no-serve", "--no-preflight", "--export-models", tinyModel)
	st := waitJob(t, c, id, 4*time.Minute, func(s jobState) bool { return s.Job.Status == "completed" })
	modelID := *st.Job.ArtifactID

	t0 := time.Now()
	m := requestExport(t, c, modelID, map[string]any{"format": "merged", "dtype": "float32"}, http.StatusAccepted)
	if again := requestExport(t, c, modelID, map[string]any{"format": "merged", "dtype": "float32"}, http.StatusOK); again.ID != m.ID {
		t.Fatalf("asking again queued another export: %s vs %s", again.ID, m.ID)
	}
	g := requestExport(t, c, modelID, map[string]any{"format": "gguf"}, http.StatusAccepted)
	ready := waitExport(t, c, modelID, m.ID, 4*time.Minute)
	if ready.Status != "ready" || ready.Agent != "test-agent" || ready.SizeBytes == 0 || !strings.HasSuffix(ready.FileName, "-merged-float32.tar.gz") {
		t.Fatalf("merged export: %+v", ready)
	}
	t.Logf("tiny merged export: %d bytes in %.1f s", ready.SizeBytes, time.Since(t0).Seconds())
	dir := downloadExport(t, c, modelID, ready)

	// The adapter as the trainer uploaded it, from storage.
	adapter := t.TempDir()
	for _, name := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		rc, err := s.App.Storage.Open(context.Background(), storage.BucketModels, c.UserID+"/"+id+"/adapter/"+name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		_ = os.WriteFile(filepath.Join(adapter, name), b, 0o644)
	}
	py := filepath.Join(filepath.Dir(te.exe), "python")
	out, err := exec.Command(py, "-c", greedyCheck, filepath.Join(te.models, tinyModel), adapter, dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "same greedy tokens") {
		t.Fatalf("merged model check: %v\n%s", err, lastLines(string(out), 20))
	}

	if gguf {
		f := waitExport(t, c, modelID, g.ID, 4*time.Minute)
		if f.Status != "failed" || !strings.Contains(f.Error, "converter failed") || f.Hint == "" {
			t.Fatalf("GGUF export of the tiny model: %+v", f)
		}
		// Retry: asking again queues the failed export again (same id).
		if again := requestExport(t, c, modelID, map[string]any{"format": "gguf"}, http.StatusAccepted); again.ID != g.ID || again.Status != "queued" {
			t.Fatalf("retry: %+v", again)
		}
	}

	c.MustJSON("DELETE", "/api/models/"+modelID+"/exports/"+m.ID, nil, 200, nil)
	if _, err := s.App.Storage.Stat(context.Background(), storage.BucketModels, c.UserID+"/"+modelID+"/exports/"+m.ID+"/"+ready.FileName); err == nil {
		t.Fatal("the deleted export's archive is still in storage")
	}
	if r := c.Do("GET", ready.Download, nil); r.Status != http.StatusNotFound {
		t.Fatalf("download of a deleted export: %d", r.Status)
	}
}

// greedyCheck: argv = base model dir, adapter dir, merged dir. The merged
// model needs no PEFT and generates what base + adapter generates.
const greedyCheck = `import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
base, adapter, merged = sys.argv[1:4]
tok = AutoTokenizer.from_pretrained(merged)
msgs = [{"role": "user", "content": "How do I calm down before an exam?"}]
ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
def greedy(m):
    with torch.no_grad():
        g = m.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    return g[0, ids["input_ids"].shape[1]:].tolist()
peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
m = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
assert not any("lora" in n for n, _ in m.named_parameters())
a, b = greedy(m), greedy(peft)
assert a == b, (a, b)
print("same greedy tokens", a)
`

const smolModel = "HuggingFaceTB/SmolLM2-135M-Instruct"

// smolAdapterModel makes a SmolLM2 PEFT adapter (random non-zero LoRA
// weights) with the trainer's Python, stores its files and completes a
// fixture job on SmolLM2 whose model holds them: a GGUF export needs a base
// model llama.cpp can convert, and training SmolLM2 here would take minutes.
func smolAdapterModel(t *testing.T, s *testserver.Server, te trainerEnv, userID, datasetID string) (modelID, adapterDir string) {
	t.Helper()
	adapterDir = t.TempDir()
	py := filepath.Join(filepath.Dir(te.exe), "python")
	script := `import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from brightrun_trainer.models import resolve_model
torch.manual_seed(0)
m = AutoModelForCausalLM.from_pretrained(resolve_model(sys.argv[1]).path, dtype=torch.float32)
get_peft_model(m, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(sys.argv[2])
print("saved")`
	cmd := exec.Command(py, "-c", script, smolModel, adapterDir)
	cmd.Env = append(os.Environ(), "BRIGHTRUN_MODELS_DIR="+sharedModelsDir(t), "HF_HUB_OFFLINE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("SmolLM2 adapter: %v\n%s", err, lastLines(string(out), 20))
	}
	ctx := context.Background()
	sys := store.AsSystem(ctx)
	st := s.App.Store
	hp := jobdoc.GPUConfig{GPUType: "XW-1", NumGPUs: 1}
	j, err := st.JobCreate(store.WithUser(ctx, userID), store.JobCreateParams{At: time.Now().UTC(), ID: uuid.NewString(), UserID: userID, DatasetID: datasetID,
		PresetID: "custom", GPUConfig: hp, TotalEpochs: 1, TotalSteps: 1, EstimatedTotalCost: 0, EstimatedCompletionAt: time.Now().Add(time.Hour),
		BaseModel: smolModel, GPUType: "XW-1", NumGPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	var files []jobdoc.File
	for _, name := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(adapterDir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := userID + "/" + j.ID + "/adapter/" + name
		if err := s.App.Storage.Put(ctx, storage.BucketModels, p, bytes.NewReader(b), int64(len(b)), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		files = append(files, jobdoc.File{Name: name, Size: int64(len(b)), StoragePath: p})
	}
	ag, err := st.AgentCreate(sys, "fixture", "fixture-hash-"+j.ID, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.App.Jobs.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "XW-1", GPUCount: 1, TokenHash: func(string, int) string { return "h" }, Lease: time.Minute}); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	claimed, err := st.JobExec(sys, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.App.Jobs.Complete(ctx, claimed, jobs.Completion{Artifact: store.ArtifactCreateParams{Name: "smol export", Artifacts: jobdoc.Artifacts{Files: files}}})
	if err != nil {
		t.Fatal(err)
	}
	return *e.ArtifactID, adapterDir
}

// sharedModelsDir is where SmolLM2's converted directory is kept across
// tests: $BRIGHTRUN_MODELS_DIR, /tmp/models (the development machine's) or
// the trainer's default ~/.cache/brightrun/models, the first that holds it,
// else the last (the trainer converts it there once, under a file lock).
func sharedModelsDir(t *testing.T) string {
	t.Helper()
	home, _ := os.UserHomeDir()
	dirs := []string{os.Getenv("BRIGHTRUN_MODELS_DIR"), "/tmp/models", filepath.Join(home, ".cache", "brightrun", "models")}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "HuggingFaceTB--SmolLM2-135M-Instruct", "config.json")); err == nil {
			return d
		}
	}
	return dirs[len(dirs)-1]
}

// TestExportGGUFRealAgent: a merged and a GGUF export of a SmolLM2 adapter
// made by the real agent (the GGUF with llama.cpp's converter): the archive
// holds the GGUF file, the adapter as a LoRA GGUF and an Ollama Modelfile
// with the chat template; the GGUF file loads with
// transformers and generates the same greedy tokens as base + adapter.
// Needs the converter (skips without it, fails with
// BRIGHTRUN_REQUIRE_LLAMA_CPP=1).
func TestExportGGUFRealAgent(t *testing.T) {
	te := newTrainerEnv(t)
	if !hasConverter(t, te) {
		t.Skip("llama.cpp's converter is not installed (scripts/llama-cpp-converter.sh)")
	}
	// SmolLM2 is converted from its packaged GGUF file once (minutes) into a
	// shared models directory (the trainer's default, unless one holds it
	// already) and linked into the test's.
	shared := sharedModelsDir(t)
	_ = os.Symlink(filepath.Join(shared, "HuggingFaceTB--SmolLM2-135M-Instruct"), filepath.Join(te.models, "HuggingFaceTB--SmolLM2-135M-Instruct"))
	s := loopServer(t, testdb.Engines()[0], te)
	c := s.SignUp(t, "gguf@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	modelID, adapter := smolAdapterModel(t, s, te, c.UserID, ds)
	startAgentWith(t, te, s.URL, s.App.Agents.CreateAgent, "--no-serve", "--no-preflight", "--export-models", smolModel)
	t0 := time.Now()
	m := requestExport(t, c, modelID, map[string]any{"format": "merged"}, http.StatusAccepted)
	g := requestExport(t, c, modelID, map[string]any{"format": "gguf", "gguf_type": "f32"}, http.StatusAccepted)
	merged := waitExport(t, c, modelID, m.ID, 8*time.Minute)
	if merged.Status != "ready" {
		t.Fatalf("merged export: %+v", merged)
	}
	t1 := time.Now()
	t.Logf("SmolLM2 merged bfloat16 export: %d bytes in %.1f s", merged.SizeBytes, t1.Sub(t0).Seconds())
	ready := waitExport(t, c, modelID, g.ID, 8*time.Minute)
	if ready.Status != "ready" {
		t.Fatalf("GGUF export: %+v", ready)
	}
	t.Logf("SmolLM2 GGUF f32 export: %d bytes in %.1f s after the merged one", ready.SizeBytes, time.Since(t1).Seconds())
	dir := downloadExport(t, c, modelID, ready)
	mf, err := os.ReadFile(filepath.Join(dir, "Modelfile"))
	if err != nil || !strings.HasPrefix(string(mf), "FROM ./model-f32.gguf") || !strings.Contains(string(mf), "<|im_start|>") {
		t.Fatalf("Modelfile: %v\n%s", err, mf)
	}
	if fi, err := os.Stat(filepath.Join(dir, "adapter-f32.gguf")); err != nil || fi.Size() == 0 {
		t.Fatalf("the archive lacks the adapter as a LoRA GGUF: %v", err)
	}
	py := filepath.Join(filepath.Dir(te.exe), "python")
	cmd := exec.Command(py, "-c", ggufCheck, smolModel, adapter, dir)
	cmd.Env = append(os.Environ(), "BRIGHTRUN_MODELS_DIR="+te.models, "HF_HUB_OFFLINE=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "same greedy tokens") {
		t.Fatalf("GGUF check: %v\n%s", err, lastLines(string(out), 20))
	}
}

// ggufCheck: argv = base model id, adapter dir, unpacked GGUF export dir.
const ggufCheck = `import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
from brightrun_trainer.models import resolve_model
base, adapter, d = sys.argv[1:4]
path = resolve_model(base).path
tok = AutoTokenizer.from_pretrained(path)
msgs = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Name three colours of the rainbow."}]
ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
def greedy(m):
    with torch.no_grad():
        g = m.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    return g[0, ids["input_ids"].shape[1]:].tolist()
peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), adapter).eval()
gguf = AutoModelForCausalLM.from_pretrained(d, gguf_file="model-f32.gguf", dtype=torch.float32).eval()
a, b = greedy(gguf), greedy(peft)
assert a == b, (a, b)
print("same greedy tokens", a)
`
