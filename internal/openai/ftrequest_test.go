package openai

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

func decode(t *testing.T, body string) CreateJobRequest {
	t.Helper()
	var r CreateJobRequest
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return r
}

// TestPlan: both hyperparameter forms, "auto" resolved from the balanced
// preset, the multiplier scaling its learning rate, aliases, and each
// refusal naming its parameter.
func TestPlan(t *testing.T) {
	c := catalog.Default()
	c.OpenAI.ModelAliases = map[string]string{"gpt-4o-mini-2024-07-18": "HuggingFaceTB/SmolLM2-135M-Instruct"}
	preset, _ := c.Preset(PresetID)
	smol := "HuggingFaceTB/SmolLM2-135M-Instruct"
	ok := []struct {
		body                string
		epochs, batch       int
		mult, lr            float64
		batchAuto, fromMeth bool
	}{
		{`{"model":"` + smol + `","training_file":"f"}`, preset.Hyperparameters.NumEpochs, preset.Hyperparameters.BatchSize, 1, preset.Hyperparameters.LearningRate, true, false},
		{`{"model":"` + smol + `","training_file":"f","hyperparameters":{"n_epochs":2,"batch_size":"auto","learning_rate_multiplier":0.5}}`, 2, preset.Hyperparameters.BatchSize, 0.5, preset.Hyperparameters.LearningRate * 0.5, true, false},
		{`{"model":"gpt-4o-mini-2024-07-18","training_file":"f","method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":"auto","batch_size":2}}}}`, preset.Hyperparameters.NumEpochs, 2, 1, preset.Hyperparameters.LearningRate, false, true},
	}
	for _, k := range ok {
		r := decode(t, k.body)
		p, err := plan(c, &r)
		if err != nil {
			t.Fatalf("%s: %v", k.body, err)
		}
		if p.Hyper.BaseModel != smol || p.NEpochs != k.epochs || p.BatchSize != k.batch || p.LearningRateMultiplier != k.mult || p.Hyper.LearningRate != k.lr || p.BatchAuto != k.batchAuto || p.HyperFromMethod != k.fromMeth {
			t.Errorf("%s: %+v", k.body, p)
		}
	}
	bad := []struct{ body, param, code string }{
		{`{"model":"gpt-4o-mini-2024-07-18x","training_file":"f"}`, "model", "model_not_found"},
		{`{"model":"ft:` + smol + `:x:y","training_file":"f"}`, "model", "model_not_found"},
		{`{"model":"` + smol + `","training_file":"f","hyperparameters":{"n_epochs":0}}`, "hyperparameters.n_epochs", ""},
		{`{"model":"` + smol + `","training_file":"f","hyperparameters":{"n_epochs":1.5}}`, "hyperparameters.n_epochs", ""},
		{`{"model":"` + smol + `","training_file":"f","method":{"type":"supervised","supervised":{"hyperparameters":{"batch_size":0}}}}`, "method.supervised.hyperparameters.batch_size", ""},
		{`{"model":"` + smol + `","training_file":"f","hyperparameters":{"learning_rate_multiplier":100}}`, "hyperparameters.learning_rate_multiplier", ""},
		{`{"model":"` + smol + `","training_file":"f","method":{"type":"dpo"}}`, "method.type", ""},
		{`{"model":"` + smol + `","training_file":"f","method":{"type":"reinforcement"}}`, "method.type", ""},
		{`{"model":"` + smol + `","training_file":"f","integrations":[{"type":"wandb"}]}`, "integrations", ""},
		{`{"model":"` + smol + `","training_file":"f","suffix":"no spaces please"}`, "suffix", ""},
		{`{"model":"` + smol + `","training_file":"f","seed":-1}`, "seed", ""},
		{`{"model":"` + smol + `","training_file":""}`, "training_file", ""},
		{`{"model":"` + smol + `","training_file":"f","hyperparameters":{},"method":{"type":"supervised","supervised":{"hyperparameters":{}}}}`, "hyperparameters", ""},
	}
	for _, k := range bad {
		r := decode(t, k.body)
		_, err := plan(c, &r)
		ae, isAE := apperr.As(err)
		if !isAE || ae.Kind != apperr.KindValidation {
			t.Fatalf("%s: %v", k.body, err)
		}
		fields, _ := ae.Details.(map[string]string)
		if fields[k.param] == "" || ae.Code != k.code {
			t.Errorf("%s: %v %q, want param %s code %q", k.body, fields, ae.Code, k.param, k.code)
		}
	}
	r := decode(t, `{"model":"gpt-5","training_file":"f"}`)
	_, err := plan(c, &r)
	if ae, _ := apperr.As(err); !strings.Contains(ae.Details.(map[string]string)["model"], smol) {
		t.Fatalf("the unknown model's message does not list the models: %v", ae.Details)
	}
}

func TestIDs(t *testing.T) {
	id := "0f8fad5b-d9cb-469f-a165-70867728950e"
	for _, c := range []struct {
		make  func(string) string
		parse func(string) (string, bool)
	}{{FileID, ParseFileID}, {JobID, ParseJobID}, {resultFileID, parseResultFileID}} {
		if got, ok := c.parse(c.make(id)); !ok || got != id {
			t.Errorf("%s: %q %v", c.make(id), got, ok)
		}
	}
	for _, bad := range []string{"file-", "file-xyz", "ftjob-0f8fad5bd9cb469fa16570867728950", "file-" + id} {
		if _, ok := ParseFileID(bad); ok && bad != "file-"+id {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, ok := ParseFileID(JobID(id)); ok {
		t.Error("a job id parsed as a file id")
	}
	for from, to := range map[string]string{"queued": "queued", "initializing": "running", "running": "running", "paused": "paused", "completed": "succeeded", "failed": "failed", "cancelled": "cancelled"} {
		if Status(from) != to {
			t.Errorf("Status(%s) = %s", from, Status(from))
		}
	}
}
