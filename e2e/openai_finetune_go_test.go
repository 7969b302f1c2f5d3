package e2e

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/brightrun/brightrun/internal/openai"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func ftClient(url, token string) openai.Client {
	// Retries off: a refused request must fail at once (the SDK retries
	// 409s by default, which would only slow the test down).
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(token), option.WithMaxRetries(0))
}

// wantAPIError checks err is the SDK's *openai.Error with the status and
// the parameter named.
func wantAPIError(t *testing.T, what string, err error, status int, param string) *openai.Error {
	t.Helper()
	var ae *openai.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s: want an *openai.Error, got %v", what, err)
	}
	if ae.StatusCode != status || ae.Param != param {
		t.Fatalf("%s: status %d param %q (%s), want %d %q", what, ae.StatusCode, ae.Param, ae.Message, status, param)
	}
	if !strings.Contains(ae.Message, param) {
		t.Fatalf("%s: the message does not name %s: %s", what, param, ae.Message)
	}
	return ae
}

func uploadChat(t *testing.T, ctx context.Context, c openai.Client, path string) *openai.FileObject {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fo, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(f, "train.jsonl", "application/jsonl"), Purpose: openai.FilePurposeFineTune})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return fo
}

// waitFile polls retrieve until the file's validation ended.
func waitFile(t *testing.T, ctx context.Context, c openai.Client, id string) *openai.FileObject {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		fo, err := c.Files.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if fo.Status != openai.FileObjectStatusUploaded || time.Now().After(deadline) {
			return fo
		}
		// Real-time dependency: validation runs in the server's worker.
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFT polls retrieve (as OpenAI's guide does) until done says so.
func waitFT(t *testing.T, ctx context.Context, c openai.Client, id string, timeout time.Duration, done func(*openai.FineTuningJob) bool) *openai.FineTuningJob {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j, err := c.FineTuning.Jobs.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if done(j) {
			return j
		}
		if j.Status == openai.FineTuningJobStatusFailed {
			t.Fatalf("job %s failed: %s %s", id, j.Error.Code, j.Error.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: timed out in %s", id, j.Status)
		}
		// Real-time dependency: a real trainer process trains the job.
		time.Sleep(250 * time.Millisecond)
	}
}

func epochs(n int64) openai.SupervisedHyperparameters {
	return openai.SupervisedHyperparameters{NEpochs: openai.SupervisedHyperparametersNEpochsUnion{OfInt: openai.Int(n)},
		BatchSize: openai.SupervisedHyperparametersBatchSizeUnion{OfInt: openai.Int(4)}}
}

func supervised(h openai.SupervisedHyperparameters) openai.FineTuningJobNewParamsMethod {
	return openai.FineTuningJobNewParamsMethod{Type: "supervised", Supervised: openai.SupervisedMethodParam{Hyperparameters: h}}
}

// TestOpenAIFineTuningGoSDK drives OpenAI's fine-tuning guide with the
// official Go module, unmodified, against a running server and a real
// trainer agent on the tiny model: upload, bad input, a job in each
// hyperparameter form, a cancelled one, a paused and resumed one, events
// paged, checkpoints, the metrics CSV.
func TestOpenAIFineTuningGoSDK(t *testing.T) {
	te := newTrainerEnv(t)
	s := loopServer(t, testdb.Engines()[0], te)
	ctx := context.Background()
	u := s.SignUp(t, "gosdk@example.com")
	c := ftClient(s.URL, apiToken(t, u))
	other := ftClient(s.URL, apiToken(t, s.SignUp(t, "gosdk-other@example.com")))

	path := chatJSONL(t, 16) // 15 training examples: 4 steps per epoch at batch size 4
	fo := uploadChat(t, ctx, c, path)
	if !strings.HasPrefix(fo.ID, "file-") || fo.Purpose != "fine-tune" || fo.Filename != "train.jsonl" {
		t.Fatalf("file: %+v", fo)
	}
	if fo = waitFile(t, ctx, c, fo.ID); fo.Status != openai.FileObjectStatusProcessed {
		t.Fatalf("file status %s: %s", fo.Status, fo.StatusDetails)
	}
	// The file is a dataset: /api lists it too.
	var dl struct {
		Datasets []struct{ ID, Status string }
	}
	u.MustJSON("GET", "/api/datasets", nil, 200, &dl)
	if len(dl.Datasets) != 1 || "file-"+strings.ReplaceAll(dl.Datasets[0].ID, "-", "") != fo.ID {
		t.Fatalf("datasets: %+v", dl)
	}
	res, err := c.Files.Content(ctx, fo.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want, _ := os.ReadFile(path); string(got) != string(want) {
		t.Fatalf("content: %d bytes, want %d", len(got), len(want))
	}

	// Bad input: each is the SDK's *openai.Error naming the parameter.
	f, _ := os.Open(path)
	_, err = c.Files.New(ctx, openai.FileNewParams{File: openai.File(f, "x.jsonl", "application/jsonl"), Purpose: openai.FilePurposeAssistants})
	f.Close()
	wantAPIError(t, "wrong purpose", err, 400, "purpose")
	bad := uploadChat(t, ctx, c, badJSONL(t))
	if bad = waitFile(t, ctx, c, bad.ID); bad.Status != openai.FileObjectStatusError || !strings.Contains(bad.StatusDetails, "line 3") {
		t.Fatalf("bad file: %s %q", bad.Status, bad.StatusDetails)
	}
	_, err = c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: bad.ID})
	if ae := wantAPIError(t, "malformed line", err, 400, "training_file"); !strings.Contains(ae.Message, "line 3") || ae.Code != "invalid_training_file" {
		t.Fatalf("malformed line: %s %s", ae.Code, ae.Message)
	}
	_, err = c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: "gpt-4o-mini-2024-07-18", TrainingFile: fo.ID})
	if ae := wantAPIError(t, "OpenAI model", err, 400, "model"); !strings.Contains(ae.Message, tinyModel) || ae.Code != "model_not_found" {
		t.Fatalf("the unknown model error does not list the models: %s %s", ae.Code, ae.Message)
	}
	_, err = other.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID})
	wantAPIError(t, "another user's file", err, 400, "training_file")
	_, err = c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID, Method: supervised(epochs(0))})
	wantAPIError(t, "n_epochs 0", err, 400, "method.supervised.hyperparameters.n_epochs")
	_, err = c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID}, option.WithJSONSet("learning_rate", 0.1))
	wantAPIError(t, "unknown field", err, 400, "learning_rate")
	_, err = c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID,
		Method: openai.FineTuningJobNewParamsMethod{Type: "dpo"}})
	wantAPIError(t, "dpo", err, 400, "method.type")
	if _, err := other.FineTuning.Jobs.Get(ctx, "ftjob-0123456789abcdef0123456789abcdef"); err == nil {
		t.Fatal("a made-up job id was found")
	}

	// Cancel and pause/resume while no agent runs: both act at once.
	cj, err := c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID, Method: supervised(epochs(1))})
	if err != nil || cj.Status != "queued" {
		t.Fatalf("create: %v %+v", err, cj)
	}
	if cj, err = c.FineTuning.Jobs.Cancel(ctx, cj.ID); err != nil || cj.Status != openai.FineTuningJobStatusCancelled {
		t.Fatalf("cancel: %v %s", err, cj.Status)
	}
	if _, err := other.FineTuning.Jobs.Cancel(ctx, cj.ID); err == nil {
		t.Fatal("another user cancelled the job")
	}

	// Job A, the legacy hyperparameters form with a suffix, metadata and a
	// separate validation file.
	vf := waitFile(t, ctx, c, uploadChat(t, ctx, c, chatJSONL(t, 3)).ID)
	a, err := c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID, Suffix: openai.String("guide"), Seed: openai.Int(7),
		ValidationFile: openai.String(vf.ID),
		Metadata:       map[string]string{"run": "a"}, Hyperparameters: openai.FineTuningJobNewParamsHyperparameters{
			NEpochs:                openai.FineTuningJobNewParamsHyperparametersNEpochsUnion{OfInt: openai.Int(1)},
			BatchSize:              openai.FineTuningJobNewParamsHyperparametersBatchSizeUnion{OfInt: openai.Int(4)},
			LearningRateMultiplier: openai.FineTuningJobNewParamsHyperparametersLearningRateMultiplierUnion{OfFloat: openai.Float(2)}}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hyperparameters.NEpochs.OfInt != 1 || a.Seed != 7 || a.Metadata["run"] != "a" || a.ValidationFile != vf.ID {
		t.Fatalf("job A: %s", a.RawJSON())
	}
	// Job C, the method form: paused while it trains, then resumed.
	cc, err := c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID, Method: supervised(epochs(3)),
		Metadata: map[string]string{"run": "c"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.FineTuning.Jobs.List(ctx, openai.FineTuningJobListParams{Metadata: map[string]string{"run": "c"}})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != cc.ID {
		t.Fatalf("list by metadata: %v %+v", err, list)
	}
	page1, err := c.FineTuning.Jobs.List(ctx, openai.FineTuningJobListParams{Limit: openai.Int(2)})
	if err != nil || len(page1.Data) != 2 || !page1.HasMore || page1.Data[0].ID != cc.ID {
		t.Fatalf("list page 1: %v %+v", err, page1)
	}
	_, err = c.FineTuning.Jobs.New(ctx, openai.FineTuningJobNewParams{Model: tinyModel, TrainingFile: fo.ID, ValidationFile: openai.String(bad.ID)})
	wantAPIError(t, "bad validation file", err, 400, "validation_file")
	page2, err := page1.GetNextPage()
	if err != nil || len(page2.Data) != 1 || page2.Data[0].ID != cj.ID || page2.HasMore {
		t.Fatalf("list page 2: %v %+v", err, page2)
	}

	te.startAgent(t, s, false)
	a = waitFT(t, ctx, c, a.ID, 4*time.Minute, func(j *openai.FineTuningJob) bool { return j.Status == openai.FineTuningJobStatusSucceeded })
	if !strings.HasPrefix(a.FineTunedModel, "ft:"+tinyModel+":guide:") || a.TrainedTokens <= 0 || a.FinishedAt == 0 || len(a.ResultFiles) != 1 {
		t.Fatalf("succeeded: %s", a.RawJSON())
	}
	// The validation file was evaluated whole (3 conversations), not a share of the training file.
	m, err := s.App.Store.ModelGet(store.WithUser(ctx, u.UserID), u.UserID, a.FineTunedModel[strings.LastIndex(a.FineTunedModel, ":")+1:])
	sum := m.TrainingSummary
	if err != nil || sum.ValidationExamples == nil || *sum.ValidationExamples != 3 || sum.TrainExamples == nil || *sum.TrainExamples < 15 {
		t.Fatalf("training summary: %v %+v", err, sum)
	}
	// Events, newest first, paged with after.
	var seen []openai.FineTuningJobEvent
	ev, err := c.FineTuning.Jobs.ListEvents(ctx, a.ID, openai.FineTuningJobListEventsParams{Limit: openai.Int(3)})
	for err == nil && ev != nil && len(ev.Data) > 0 {
		seen = append(seen, ev.Data...)
		ev, err = ev.GetNextPage()
	}
	if err != nil {
		t.Fatal(err)
	}
	metrics, created := 0, false
	for i, e := range seen {
		if i > 0 && e.CreatedAt > seen[i-1].CreatedAt {
			t.Fatalf("events not newest first at %d", i)
		}
		if e.Type == "metrics" {
			metrics++
		}
		created = created || strings.HasPrefix(e.Message, "Created fine-tuning job")
	}
	if metrics == 0 || !created || len(seen) < 8 {
		t.Fatalf("events: %d (%d metrics), created %v", len(seen), metrics, created)
	}
	cps, err := c.FineTuning.Jobs.Checkpoints.List(ctx, a.ID, openai.FineTuningJobCheckpointListParams{})
	if err != nil || len(cps.Data) == 0 || cps.Data[0].FineTunedModelCheckpoint != a.FineTunedModel || cps.Data[0].Metrics.TrainLoss <= 0 || cps.Data[0].Metrics.FullValidLoss <= 0 {
		t.Fatalf("checkpoints: %v %+v", err, cps)
	}
	// Token accuracies are measured (null would read as 0 in the SDK's struct: check the JSON).
	if raw := cps.Data[0].RawJSON(); strings.Contains(raw, "accuracy\":null") || !strings.Contains(raw, "\"full_valid_mean_token_accuracy\":") {
		t.Fatalf("checkpoint token accuracies: %s", raw)
	}
	rf, err := c.Files.Content(ctx, a.ResultFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(rf.Body)
	rf.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); lines[0] != "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy" || len(lines) < 3 {
		t.Fatalf("results CSV: %s", csv)
	}

	// The guide's last step: talk to the fine-tuned model (the agent serves
	// inference beside training).
	chat, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: a.FineTunedModel, MaxTokens: openai.Int(8),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("How should I start paying off my mortgage?")}})
	if err != nil || len(chat.Choices) != 1 || chat.Usage.CompletionTokens < 1 {
		t.Fatalf("chat with %s: %v %+v", a.FineTunedModel, err, chat)
	}

	// Job C: paused once it trains; it stops at its next checkpoint (every
	// 4 steps here), releases the agent, and resumes from it.
	js := func() store.ExecJob {
		ftID, _ := v1.ParseJobID(cc.ID)
		f, _ := s.App.Store.FineTuneGet(store.WithUser(ctx, u.UserID), u.UserID, ftID)
		if f.JobID == nil {
			return store.ExecJob{}
		}
		e, _ := s.App.Store.JobExec(store.AsSystem(ctx), *f.JobID)
		return e
	}
	waitFT(t, ctx, c, cc.ID, 3*time.Minute, func(*openai.FineTuningJob) bool {
		e := js()
		return e.CurrentStage == "training" && e.CurrentStep >= 1
	})
	if _, err := c.FineTuning.Jobs.Pause(ctx, cc.ID); err != nil {
		t.Fatal(err)
	}
	paused := waitFT(t, ctx, c, cc.ID, 3*time.Minute, func(j *openai.FineTuningJob) bool { return j.Status == "paused" })
	stopped := js()
	if stopped.Checkpoint == nil || stopped.AgentID != "" || stopped.CurrentStep >= *stopped.TotalSteps {
		t.Fatalf("paused job: step %d/%v, agent %q, checkpoint %v", stopped.CurrentStep, stopped.TotalSteps, stopped.AgentID, stopped.Checkpoint)
	}
	chatCheckpoint(t, ctx, c, other, cc.ID, stopped)
	if _, err := c.FineTuning.Jobs.Resume(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	waitFT(t, ctx, c, cc.ID, 4*time.Minute, func(j *openai.FineTuningJob) bool { return j.Status == openai.FineTuningJobStatusSucceeded })
	done := js()
	if done.Attempt != 2 || done.RetryCount != 0 {
		t.Fatalf("resumed job: attempt %d, retries %d", done.Attempt, done.RetryCount)
	}
	var st jobState
	u.MustJSON("GET", "/api/jobs/"+done.ID, nil, 200, &st)
	resumed := false
	for _, e := range st.Events {
		resumed = resumed || (e.Attempt == 2 && strings.Contains(e.Message, "resuming"))
	}
	if !resumed {
		t.Fatalf("attempt 2 did not resume from the checkpoint: %+v", st.Events)
	}
}

// chatCheckpoint: the paused job's resume checkpoint is listed with an
// ft:…:ckpt-step-N model id, and that id and the bare ftckpt- id are both
// models to chat with (the agent is handed only the checkpoint's adapter
// files); to another user both are model_not_found.
func chatCheckpoint(t *testing.T, ctx context.Context, c, other openai.Client, jobID string, stopped store.ExecJob) {
	t.Helper()
	cp := stopped.Checkpoint
	if cp == nil || cp.Step < 1 {
		t.Fatalf("checkpoint row: %+v", cp)
	}
	cps, err := c.FineTuning.Jobs.Checkpoints.List(ctx, jobID, openai.FineTuningJobCheckpointListParams{})
	if err != nil || len(cps.Data) != 1 || int(cps.Data[0].StepNumber) != cp.Step || cps.Data[0].Metrics.TrainLoss <= 0 {
		t.Fatalf("checkpoints of the paused job: %v %+v", err, cps)
	}
	ck := cps.Data[0]
	if want := ":" + jobID + ":ckpt-step-" + strconv.Itoa(cp.Step); !strings.HasPrefix(ck.FineTunedModelCheckpoint, "ft:"+tinyModel+":") ||
		!strings.HasSuffix(ck.FineTunedModelCheckpoint, want) || !strings.HasPrefix(ck.ID, "ftckpt-") {
		t.Fatalf("checkpoint ids: %s %s", ck.ID, ck.FineTunedModelCheckpoint)
	}
	for _, id := range []string{ck.FineTunedModelCheckpoint, ck.ID} {
		chat, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: id, MaxTokens: openai.Int(4),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What should I do first?")}})
		if err != nil || len(chat.Choices) != 1 || chat.Usage.CompletionTokens < 1 || chat.Model != id {
			t.Fatalf("chat with checkpoint %s: %v %+v", id, err, chat)
		}
		if m, err := c.Models.Get(ctx, id); err != nil || m.ID != id || m.OwnedBy != "user" {
			t.Fatalf("GET /v1/models/%s: %v %+v", id, err, m)
		}
		_, err = other.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: id,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		if ae := wantAPIError(t, "another user's checkpoint", err, 404, ""); ae.Code != "model_not_found" {
			t.Fatalf("another user's checkpoint: %s %s", ae.Code, ae.Message)
		}
		_, err = other.Models.Get(ctx, id)
		wantAPIError(t, "another user's checkpoint model", err, 404, "")
	}
	// A step that is not a kept checkpoint is unknown.
	_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: strings.TrimSuffix(ck.ID, strconv.Itoa(cp.Step)) + strconv.Itoa(cp.Step+100),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	wantAPIError(t, "an unknown checkpoint step", err, 404, "")
}
