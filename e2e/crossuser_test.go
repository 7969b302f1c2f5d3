package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	v1 "github.com/brightrun/brightrun/internal/openai"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
	"github.com/brightrun/brightrun/internal/training/catalog"
	"github.com/google/uuid"
)

// world is what user A owns; each domain adds its resources in setupWorld
// and its routes in crossUserCases, so every route is checked.
type world struct {
	t       *testing.T
	s       *testserver.Server
	a, b    *testserver.Client
	tokenA  string // id of one of A's API tokens
	dsA     string // one of A's datasets (uploading)
	notifA  string // one of A's notifications
	jobA    string // one of A's jobs (queued)
	modelA  string // one of A's models
	exportA string // an export of modelA (queued)
	unread  int    // A's unread notifications after setup
	secret  []string
	hookA   string // A's webhook signing secret
	agentA  string // an agent A (the first account: an operator) created
	fileA   string // dsA as a /v1 file id
	ftjobA  string // one of A's /v1 fine-tuning jobs (validating_files, on dsA)
	ckptA   string // the ftckpt- id of a checkpoint of another of A's fine-tuning jobs (running)
}

func setupWorld(t *testing.T, s *testserver.Server) *world {
	w := &world{t: t, s: s, a: s.SignUp(t, "owner@example.com"), b: s.SignUp(t, "intruder@example.com")}
	var tok struct {
		APIToken struct{ ID, Name string } `json:"api_token"`
	}
	w.a.MustJSON("POST", "/api/tokens", map[string]string{"name": "owner-secret-token-name"}, 201, &tok)
	w.tokenA = tok.APIToken.ID
	up := createDataset(t, w.a, "owner-secret-dataset", "owner.jsonl", 10)
	w.dsA = up.Dataset.ID
	n, err := s.App.Store.NotificationCreate(store.AsSystem(context.Background()), store.NotificationCreateParams{At: time.Now().UTC(), UserID: w.a.UserID,
		Type: "dataset_ready", Title: "owner-secret-notification", Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	w.notifA = n.ID
	w.jobA = insertJobID(t, s, w.a.UserID, w.dsA, "queued")
	launchA(t, s, w.jobA)
	w.a.MustJSON("PUT", "/api/settings/budget", map[string]any{"monthly_budget": 123.45}, 200, nil)
	w.modelA = finishedModel(t, s, w.a.UserID, w.dsA, "owner-secret-model")
	w.ckptA = checkpointFixture(t, s, w.a.UserID, w.dsA)
	ex, _, err := s.App.Store.ModelExportCreate(store.AsSystem(context.Background()), store.ModelExportCreateParams{ID: uuid.NewString(), WorkID: uuid.NewString(),
		UserID: w.a.UserID, ModelID: w.modelA, BaseModel: "mistralai/Mistral-7B-v0.1", Format: store.ExportMerged, Dtype: "bfloat16", At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	w.exportA = ex.ID
	var ch struct {
		Settings struct {
			WebhookSecret string `json:"webhook_secret"`
		}
	}
	w.a.MustJSON("PUT", "/api/settings/notifications", map[string]any{"webhook_url": "https://owner-secret-hook.invalid/x"}, 200, &ch)
	w.hookA = ch.Settings.WebhookSecret
	var ag struct {
		Agent struct{ ID string }
		Token string
	}
	w.a.MustJSON("POST", "/api/agents", map[string]string{"name": "owner-secret-agent"}, 201, &ag)
	w.agentA = ag.Agent.ID
	// A second after the settings were saved (the caller's clock orders them).
	if _, err := s.App.Store.NotificationCreate(store.AsSystem(context.Background()), store.NotificationCreateParams{At: time.Now().UTC().Add(time.Second), UserID: w.a.UserID,
		Type: "job_completed", Title: "owner-secret-delivered", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Outbound.Enqueue(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n0 struct {
		UnreadCount int `json:"unread_count"`
	}
	w.a.MustJSON("GET", "/api/notifications", nil, 200, &n0)
	w.unread = n0.UnreadCount
	w.fileA = "file-" + strings.ReplaceAll(w.dsA, "-", "")
	var ft struct{ ID, Status string }
	r := w.a.Do("POST", "/v1/fine_tuning/jobs", map[string]any{"model": catalog.Default().BaseModels[0].ID, "training_file": w.fileA, "metadata": map[string]string{"k": "owner-secret-meta"}})
	if err := json.Unmarshal(r.Body, &ft); r.Status != 200 || err != nil || ft.Status != "validating_files" {
		t.Fatalf("A's fine-tuning job: %d %s", r.Status, r.Body)
	}
	w.ftjobA = ft.ID
	w.secret = []string{w.fileA, w.ftjobA, w.ckptA, strings.TrimPrefix(w.ckptA, "ftckpt-")[:32], strings.TrimPrefix(w.fileA, "file-"), "owner-secret-meta", w.hookA, "owner-secret-hook", "owner-secret-delivered", w.a.UserID, "owner@example.com", tok.APIToken.ID, "owner-secret-token-name", w.dsA, "owner-secret-dataset", n.ID, "owner-secret-notification", w.jobA, "123.45", w.modelA, "owner-secret-model", "owner-secret-agent", w.agentA, "owner-secret-slurm-id", w.exportA}
	return w
}

func (w *world) tokenStillActive(t *testing.T) {
	var out struct {
		Tokens []struct {
			ID        string
			RevokedAt *string `json:"revoked_at"`
		} `json:"tokens"`
	}
	w.a.MustJSON("GET", "/api/tokens", nil, 200, &out)
	for _, tk := range out.Tokens {
		if tk.ID == w.tokenA && tk.RevokedAt == nil {
			return
		}
	}
	t.Fatalf("user A's token was revoked by user B")
}

func (w *world) datasetIntact(t *testing.T) {
	var out struct{ Dataset datasetView }
	w.a.MustJSON("GET", "/api/datasets/"+w.dsA, nil, 200, &out)
	if out.Dataset.Name != "owner-secret-dataset" || out.Dataset.Status != "uploading" {
		t.Fatalf("user A's dataset changed: %+v", out.Dataset)
	}
}

func (w *world) notificationUnread(t *testing.T) {
	var out struct {
		UnreadCount int `json:"unread_count"`
	}
	w.a.MustJSON("GET", "/api/notifications", nil, 200, &out)
	if out.UnreadCount != w.unread || w.unread == 0 {
		t.Fatalf("user A's notification was marked read by user B")
	}
}

// fineTuneIntact: A's /v1 job still waits for its file, and B's requests
// created no job on A's file.
func (w *world) fineTuneIntact(t *testing.T) {
	var j struct{ Status string }
	r := w.a.Do("GET", "/v1/fine_tuning/jobs/"+w.ftjobA, nil)
	if err := json.Unmarshal(r.Body, &j); r.Status != 200 || err != nil || j.Status != "validating_files" {
		t.Fatalf("user A's fine-tuning job changed: %d %s", r.Status, r.Body)
	}
	var l struct{ Data []struct{ ID string } }
	_ = json.Unmarshal(w.b.Do("GET", "/v1/fine_tuning/jobs", nil).Body, &l)
	if len(l.Data) != 0 {
		t.Fatalf("user B created a job on A's file: %+v", l.Data)
	}
}

func (w *world) jobIntact(t *testing.T) {
	var out struct{ Job struct{ Status string } }
	w.a.MustJSON("GET", "/api/jobs/"+w.jobA, nil, 200, &out)
	if out.Job.Status != "queued" {
		t.Fatalf("user A's job changed: %+v", out.Job)
	}
	var b struct {
		MonthlyBudget *float64 `json:"monthly_budget"`
	}
	w.a.MustJSON("GET", "/api/settings/budget", nil, 200, &b)
	if b.MonthlyBudget == nil || *b.MonthlyBudget != 123.45 {
		t.Fatalf("user A's budget changed: %v", b.MonthlyBudget)
	}
}

// checkpointFixture gives the user a running training job with a
// registered checkpoint at step 4 and a /v1 fine-tuning job on it, and
// returns the checkpoint's ftckpt- id (a model id for its owner only). The
// checkpoint lists its adapter files beside the optimizer and trainer state,
// as the trainer uploads them (no agent downloads them here).
func checkpointFixture(t *testing.T, s *testserver.Server, userID, datasetID string) string {
	t.Helper()
	st, ctx := s.App.Store, context.Background()
	j := storetest.NewJob(t, st, userID, datasetID, "XW-1")
	ag, err := st.AgentCreate(store.AsSystem(ctx), "ckpt-fixture", "fixture-hash-"+j.ID, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.App.Jobs.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "XW-1", GPUCount: 1, TokenHash: func(string, int) string { return "h" }, Lease: time.Hour}); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	dir := userID + "/" + j.ID + "/checkpoints/step-4/"
	cp := jobdoc.Checkpoint{Step: 4}
	for _, f := range []struct {
		name string
		size int64
	}{{"adapter_config.json", 2}, {"adapter_model.safetensors", 8}, {"optimizer.pt", 16}, {"trainer_state.json", 2}} {
		cp.Files = append(cp.Files, jobdoc.File{Name: f.name, Size: f.size, StoragePath: dir + f.name})
	}
	if err := st.JobCheckpointSet(store.AsSystem(ctx), j.ID, 1, cp, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	f, err := st.FineTuneCreate(store.WithUser(ctx, userID), store.FineTuneJob{ID: uuid.NewString(), UserID: userID, JobID: &j.ID, Model: "m", TrainingFile: datasetID,
		Seed: 42, Status: store.FineTuneCreated, CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return v1.CheckpointID(f.ID, 4)
}

// checkpointServable: A's checkpoint is still a model for A (so B's 404 is
// isolation, not an unknown id).
func (w *world) checkpointServable(t *testing.T) {
	var m struct{ ID string }
	r := w.a.Do("GET", "/v1/models/"+w.ckptA, nil)
	if err := json.Unmarshal(r.Body, &m); r.Status != 200 || err != nil || m.ID != w.ckptA {
		t.Fatalf("A's checkpoint as a model: %d %s", r.Status, r.Body)
	}
}

// finishedModel makes a completed job with a model artifact, through the
// job lifecycle (no agent: the fixture's files are never downloaded).
func finishedModel(t *testing.T, s *testserver.Server, userID, datasetID, name string) string {
	return finishedModelWith(t, s, userID, datasetID, name, `{"files":[{"name":"adapter_config.json","size":2,"storage_path":"`+userID+`/x/adapter/adapter_config.json"}]}`)
}

// finishedModelWith completes a fixture job whose model has the artifacts
// document given (JSON).
func finishedModelWith(t *testing.T, s *testserver.Server, userID, datasetID, name, artifacts string) string {
	return completedFixture(t, s, userID, datasetID, store.ArtifactCreateParams{Name: name,
		QualityMetrics: fixtureDoc[jobdoc.Quality](t, `{"perplexity_improvement_pct": 20}`), Artifacts: fixtureDoc[jobdoc.Artifacts](t, artifacts)})
}

// fixtureDoc decodes a fixture's JSON into its typed document, refusing
// fields the type lacks (a misspelt fixture fails instead of vanishing).
func fixtureDoc[T any](t testing.TB, js string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("fixture %T: %v", v, err)
	}
	return v
}

// completedFixture runs a fixture job (GPU type XW-1, which no real agent
// claims) through claim and completion with the job lifecycle and returns
// its model's id.
func completedFixture(t *testing.T, s *testserver.Server, userID, datasetID string, art store.ArtifactCreateParams) string {
	t.Helper()
	st := s.App.Store
	ctx := context.Background()
	j := storetest.NewJob(t, st, userID, datasetID, "XW-1")
	ag, err := st.AgentCreate(store.AsSystem(ctx), "fixture", "fixture-hash-"+j.ID, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.App.Jobs.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "XW-1", GPUCount: 1, TokenHash: func(string, int) string { return "h" }, Lease: time.Minute}); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	claimed, err := st.JobExec(store.AsSystem(ctx), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.App.Jobs.Complete(ctx, claimed, jobs.Completion{Artifact: art})
	if err != nil {
		t.Fatal(err)
	}
	return *e.ArtifactID
}

// noPreferences: nobody added a vote to A's model.
func (w *world) noPreferences(t *testing.T) {
	var out struct{ Preferences []any }
	w.a.MustJSON("GET", "/api/models/"+w.modelA+"/preferences", nil, 200, &out)
	if len(out.Preferences) != 0 {
		t.Fatalf("another user added %d votes to A's model", len(out.Preferences))
	}
}

func (w *world) modelIntact(t *testing.T) {
	var out struct{ Model struct{ Name, Status string } }
	w.a.MustJSON("GET", "/api/models/"+w.modelA, nil, 200, &out)
	if out.Model.Name != "owner-secret-model" || out.Model.Status != "stored" {
		t.Fatalf("user A's model changed: %+v", out.Model)
	}
}

// exportIntact: A still has exactly its one export, and it is still queued.
func (w *world) exportIntact(t *testing.T) {
	var out struct {
		Exports []struct{ ID, Status string } `json:"exports"`
	}
	w.a.MustJSON("GET", "/api/models/"+w.modelA+"/exports", nil, 200, &out)
	if len(out.Exports) != 1 || out.Exports[0].ID != w.exportA || out.Exports[0].Status != "queued" {
		t.Fatalf("user A's exports changed: %+v", out.Exports)
	}
}

func (w *world) agentIntact(t *testing.T) {
	var out struct{ Agents []struct{ ID string } }
	w.a.MustJSON("GET", "/api/agents", nil, 200, &out)
	for _, a := range out.Agents {
		if a.ID == w.agentA {
			return
		}
	}
	t.Fatalf("the operator's agent was revoked by another user")
}

func (w *world) channelsIntact(t *testing.T) {
	var out struct {
		Settings struct {
			WebhookURL    string `json:"webhook_url"`
			WebhookSecret string `json:"webhook_secret"`
		}
	}
	w.a.MustJSON("GET", "/api/settings/notifications", nil, 200, &out)
	if out.Settings.WebhookURL != "https://owner-secret-hook.invalid/x" || out.Settings.WebhookSecret != w.hookA || w.hookA == "" {
		t.Fatalf("user A's notification channels changed: %+v", out.Settings)
	}
}

func crossUserCases(w *world) []testserver.CrossUserCase {
	s := w.secret
	ds := "/api/datasets/" + w.dsA
	return []testserver.CrossUserCase{
		{Route: "POST /api/datasets", Path: "/api/datasets", Body: map[string]any{"name": "b", "file_name": "b.json", "file_size": 5}, Secret: s},
		{Route: "GET /api/datasets", Path: "/api/datasets", Secret: s},
		{Route: "GET /api/datasets/{id}", Path: ds, Secret: s},
		{Route: "PATCH /api/datasets/{id}", Path: ds, Body: map[string]string{"name": "pwned"}, Secret: s, After: w.datasetIntact},
		{Route: "DELETE /api/datasets/{id}", Path: ds, Secret: s, After: w.datasetIntact},
		{Route: "POST /api/datasets/{id}/confirm", Path: ds + "/confirm", Secret: s, After: w.datasetIntact},
		{Route: "POST /api/datasets/{id}/upload-url", Path: ds + "/upload-url", Secret: s},
		{Route: "GET /api/datasets/{id}/errors.csv", Path: ds + "/errors.csv", Secret: s},
		{Route: "GET /api/datasets/{id}/examples", Path: ds + "/examples", Secret: s},
		{Route: "GET /datasets", Path: "/datasets", Secret: s},
		{Route: "GET /datasets/new", Path: "/datasets/new?replace=" + w.dsA, Secret: s},
		{Route: "GET /datasets/{id}", Path: "/datasets/" + w.dsA, Secret: s},
		{Route: "POST /datasets/{id}/delete", Path: "/datasets/" + w.dsA + "/delete", Form: "x=1", Secret: s, After: w.datasetIntact},
		{Route: "GET /api/notifications", Path: "/api/notifications", Secret: s},
		{Route: "PATCH /api/notifications/{id}/read", Path: "/api/notifications/" + w.notifA + "/read", Secret: s, After: w.notificationUnread},
		{Route: "POST /api/notifications/read-all", Path: "/api/notifications/read-all", Secret: s, After: w.notificationUnread},
		{Route: "GET /notifications", Path: "/notifications", Secret: s},
		{Route: "GET /api/catalog", Path: "/api/catalog", Secret: s},
		{Route: "POST /api/jobs/estimate", Path: "/api/jobs/estimate", Body: jobReq(w.dsA, smol, "cpu-local", 1, nil), Secret: s},
		{Route: "POST /api/jobs", Path: "/api/jobs", Body: jobReq(w.dsA, smol, "cpu-local", 1, nil), Secret: s, After: w.jobIntact},
		{Route: "GET /api/jobs", Path: "/api/jobs", Secret: s},
		{Route: "GET /api/jobs/{id}", Path: "/api/jobs/" + w.jobA, Secret: s},
		{Route: "POST /api/jobs/{id}/cancel", Path: "/api/jobs/" + w.jobA + "/cancel", Secret: s, After: w.jobIntact},
		{Route: "POST /api/jobs/{id}/retry", Path: "/api/jobs/" + w.jobA + "/retry", Secret: s, After: w.jobIntact},
		{Route: "POST /training/jobs/{id}/retry", Path: "/training/jobs/" + w.jobA + "/retry", Form: "x=1", Secret: s, After: w.jobIntact},
		{Route: "GET /api/launches", Path: "/api/launches", Secret: s},
		{Route: "GET /api/launches", Path: "/api/launches?job_id=" + w.jobA, Secret: s},
		{Route: "GET /api/models", Path: "/api/models", Secret: s},
		{Route: "GET /api/models/{id}", Path: "/api/models/" + w.modelA, Secret: s},
		{Route: "PATCH /api/models/{id}", Path: "/api/models/" + w.modelA, Body: map[string]string{"status": "archived"}, Secret: s, After: w.modelIntact},
		{Route: "DELETE /api/models/{id}", Path: "/api/models/" + w.modelA, Secret: s, After: w.modelIntact},
		{Route: "POST /api/models/{id}/download", Path: "/api/models/" + w.modelA + "/download", Body: map[string]any{}, Secret: s},
		{Route: "GET /api/models/{id}/archive", Path: "/api/models/" + w.modelA + "/archive", Secret: s},
		{Route: "POST /api/models/{id}/exports", Path: "/api/models/" + w.modelA + "/exports", Body: map[string]any{"format": "gguf"}, Secret: s, After: w.exportIntact},
		{Route: "GET /api/models/{id}/exports", Path: "/api/models/" + w.modelA + "/exports", Secret: s},
		{Route: "GET /api/models/{id}/exports/{eid}/download", Path: "/api/models/" + w.modelA + "/exports/" + w.exportA + "/download", Secret: s},
		{Route: "DELETE /api/models/{id}/exports/{eid}", Path: "/api/models/" + w.modelA + "/exports/" + w.exportA, Secret: s, After: w.exportIntact},
		{Route: "GET /api/models/{id}/playground", Path: "/api/models/" + w.modelA + "/playground", Secret: s},
		{Route: "POST /api/models/{id}/playground/chat", Path: "/api/models/" + w.modelA + "/playground/chat",
			Body: map[string]any{"side": "adapter", "messages": []map[string]string{{"role": "user", "content": "hi"}}}, Secret: s},
		{Route: "POST /api/models/{id}/preferences", Path: "/api/models/" + w.modelA + "/preferences", Body: map[string]any{"left_side": "base", "left_text": "a", "right_text": "b",
			"choice": "left", "messages": []map[string]string{{"role": "user", "content": "hi"}}}, Secret: s, After: w.noPreferences},
		{Route: "GET /api/models/{id}/preferences", Path: "/api/models/" + w.modelA + "/preferences", Secret: s},
		{Route: "GET /api/models/{id}/preferences.jsonl", Path: "/api/models/" + w.modelA + "/preferences.jsonl", Secret: s},
		{Route: "GET /models/{id}/playground", Path: "/models/" + w.modelA + "/playground", Secret: s},
		{Route: "GET /v1/models", Path: "/v1/models", Secret: s},
		{Route: "GET /v1/models/{id...}", Path: "/v1/models/ft:mistralai/Mistral-7B-v0.1:owner-secret-model:" + w.modelA, Secret: s},
		{Route: "GET /v1/models/{id...}", Path: "/v1/models/" + w.ckptA, Secret: s, After: w.checkpointServable},
		{Route: "POST /v1/chat/completions", Path: "/v1/chat/completions", Body: map[string]any{"model": "ft:mistralai/Mistral-7B-v0.1:owner-secret-model:" + w.modelA,
			"messages": []map[string]string{{"role": "user", "content": "hi"}}}, Secret: s},
		{Route: "POST /v1/chat/completions", Path: "/v1/chat/completions", Body: map[string]any{"model": w.ckptA,
			"messages": []map[string]string{{"role": "user", "content": "hi"}}}, Secret: s, After: w.checkpointServable},
		{Route: "GET /models", Path: "/models", Secret: s},
		{Route: "GET /models/{id}", Path: "/models/" + w.modelA, Secret: s},
		{Route: "GET /api/costs", Path: "/api/costs?period=90", Secret: s},
		{Route: "GET /api/costs/export.csv", Path: "/api/costs/export.csv", Secret: s},
		{Route: "GET /costs", Path: "/costs", Secret: s},
		{Route: "GET /api/settings/budget", Path: "/api/settings/budget", Secret: s},
		{Route: "PUT /api/settings/budget", Path: "/api/settings/budget", Body: map[string]any{"monthly_budget": 1}, Secret: s, After: w.jobIntact},
		{Route: "GET /api/settings/notifications", Path: "/api/settings/notifications", Secret: s},
		{Route: "PUT /api/settings/notifications", Path: "/api/settings/notifications", Body: map[string]any{"webhook_url": ""}, Secret: s, After: w.channelsIntact},
		{Route: "POST /api/settings/notifications/rotate-secret", Path: "/api/settings/notifications/rotate-secret", Body: map[string]any{}, Secret: s, After: w.channelsIntact},
		{Route: "GET /api/settings/notifications/deliveries", Path: "/api/settings/notifications/deliveries", Secret: s},
		{Route: "GET /settings/notifications", Path: "/settings/notifications", Secret: s},
		{Route: "GET /training/configure", Path: "/training/configure?datasetId=" + w.dsA, Secret: s},
		{Route: "GET /training/jobs", Path: "/training/jobs", Secret: s},
		{Route: "GET /training/jobs/{id}", Path: "/training/jobs/" + w.jobA, Secret: s},
		{Route: "POST /training/jobs/{id}/cancel", Path: "/training/jobs/" + w.jobA + "/cancel", Form: "x=1", Secret: s, After: w.jobIntact},
		{Route: "GET /api/agents", Path: "/api/agents?all=true", Secret: s},
		{Route: "POST /api/agents", Path: "/api/agents", Body: map[string]string{"name": "intruder-agent"}, Secret: s},
		{Route: "DELETE /api/agents/{id}", Path: "/api/agents/" + w.agentA, Secret: s, After: w.agentIntact},
		{Route: "GET /api/agents/capability", Path: "/api/agents/capability?gpu_type=cpu-local", Secret: s},
		{Route: "GET /agents", Path: "/agents?all=true", Secret: s},
		{Route: "GET /help/agents", Path: "/help/agents", Secret: s},
		{Route: "GET /api/auth/me", Path: "/api/auth/me", Secret: s},
		{Route: "GET /api/tokens", Path: "/api/tokens", Secret: s},
		{Route: "POST /api/tokens", Path: "/api/tokens", Body: map[string]string{"name": "b"}, Secret: s},
		{Route: "DELETE /api/tokens/{id}", Path: "/api/tokens/" + w.tokenA, Secret: s, After: w.tokenStillActive},
		{Route: "GET /{$}", Path: "/", Secret: s},
		{Route: "GET /settings", Path: "/settings", Secret: s},
		{Route: "POST /settings/tokens", Path: "/settings/tokens", Form: "name=b2", Secret: s},
		{Route: "POST /settings/tokens/{id}/revoke", Path: "/settings/tokens/" + w.tokenA + "/revoke", Form: "x=1", Secret: s, After: w.tokenStillActive},
		{Route: "POST /v1/files", Path: "/v1/files", Body: map[string]any{"purpose": "fine-tune"}, Secret: s},
		{Route: "GET /v1/files", Path: "/v1/files?purpose=fine-tune", Secret: s},
		{Route: "GET /v1/files/{id}", Path: "/v1/files/" + w.fileA, Secret: s},
		{Route: "GET /v1/files/{id}/content", Path: "/v1/files/" + w.fileA + "/content", Secret: s},
		{Route: "DELETE /v1/files/{id}", Path: "/v1/files/" + w.fileA, Secret: s, After: w.datasetIntact},
		{Route: "POST /v1/fine_tuning/jobs", Path: "/v1/fine_tuning/jobs", Body: map[string]any{"model": smol, "training_file": w.fileA}, Secret: s, After: w.fineTuneIntact},
		{Route: "GET /v1/fine_tuning/jobs", Path: "/v1/fine_tuning/jobs?metadata[k]=owner-secret-meta", Secret: s},
		{Route: "GET /v1/fine_tuning/jobs/{id}", Path: "/v1/fine_tuning/jobs/" + w.ftjobA, Secret: s},
		{Route: "POST /v1/fine_tuning/jobs/{id}/cancel", Path: "/v1/fine_tuning/jobs/" + w.ftjobA + "/cancel", Secret: s, After: w.fineTuneIntact},
		{Route: "POST /v1/fine_tuning/jobs/{id}/pause", Path: "/v1/fine_tuning/jobs/" + w.ftjobA + "/pause", Secret: s, After: w.fineTuneIntact},
		{Route: "POST /v1/fine_tuning/jobs/{id}/resume", Path: "/v1/fine_tuning/jobs/" + w.ftjobA + "/resume", Secret: s, After: w.fineTuneIntact},
		{Route: "GET /v1/fine_tuning/jobs/{id}/events", Path: "/v1/fine_tuning/jobs/" + w.ftjobA + "/events", Secret: s},
		{Route: "GET /v1/fine_tuning/jobs/{id}/checkpoints", Path: "/v1/fine_tuning/jobs/" + w.ftjobA + "/checkpoints", Secret: s},
		{Route: "POST /api/auth/logout", Path: "/api/auth/logout", Secret: s, As: w.s.Login(w.t, "intruder@example.com")},
		{Route: "POST /logout", Path: "/logout", Form: "x=1", Secret: s, As: w.s.Login(w.t, "intruder@example.com")},
	}
}

// TestCrossUser requests every user route as user B against user A's data.
func TestCrossUser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		w := setupWorld(t, s)
		cases := crossUserCases(w)
		if missing := testserver.MissingCases(s.App.UserRoutes, cases); len(missing) > 0 {
			t.Fatalf("user routes without a cross-user case: %v", missing)
		}
		testserver.CheckCrossUser(t, w.b, cases)
	})
}

// launchA gives A's job a launch (as the launcher reconciler would) whose
// external id only A may see.
func launchA(t *testing.T, s *testserver.Server, jobID string) {
	sys := store.AsSystem(context.Background())
	now := time.Now().UTC()
	l, err := s.App.Store.LaunchCreate(sys, store.LaunchCreateParams{ID: uuid.NewString(), JobID: jobID, Attempt: 1, Launcher: "hpc", Kind: "slurm",
		AgentName: "launch-hpc", TokenHash: "owner-launch-token-hash", TimeLimitSeconds: 900, At: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.App.Store.LaunchSubmitted(sys, store.LaunchSubmittedParams{ID: l.ID, ExternalID: "owner-secret-slurm-id", LogsURL: "file:///logs/x", At: now}); err != nil {
		t.Fatal(err)
	}
}
