package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

// CreateJobRequest is the body of POST /v1/fine_tuning/jobs, as OpenAI's
// SDKs send it. Hyperparameter values are "auto" or a number, so they are
// kept raw and parsed with the parameter's name.
type CreateJobRequest struct {
	Model           string            `json:"model"`
	TrainingFile    string            `json:"training_file"`
	ValidationFile  *string           `json:"validation_file"`
	Suffix          *string           `json:"suffix"`
	Seed            *int64            `json:"seed"`
	Metadata        map[string]string `json:"metadata"`
	Hyperparameters *Hyperparameters  `json:"hyperparameters"`
	Method          *Method           `json:"method"`
	Integrations    json.RawMessage   `json:"integrations"`
}

// Hyperparameters are OpenAI's supervised hyperparameters.
type Hyperparameters struct {
	BatchSize              json.RawMessage `json:"batch_size"`
	LearningRateMultiplier json.RawMessage `json:"learning_rate_multiplier"`
	NEpochs                json.RawMessage `json:"n_epochs"`
}

// Method is OpenAI's method object; only supervised is served.
type Method struct {
	Type       string `json:"type"`
	Supervised *struct {
		Hyperparameters *Hyperparameters `json:"hyperparameters"`
	} `json:"supervised"`
	DPO           json.RawMessage `json:"dpo"`
	Reinforcement json.RawMessage `json:"reinforcement"`
}

// Plan is a validated request: what the training job is created with
// (stored with the fine-tuning job; defined once, in jobdoc).
type Plan = jobdoc.FineTunePlan

// PresetID is the catalog preset that "auto" resolves to.
const PresetID = catalog.DefaultPresetID

var suffixRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// autoInt parses "auto" (ok=false) or a whole number.
func autoInt(f apperr.FieldErrors, param string, raw json.RawMessage) (int, bool) {
	if isNull(raw) || string(bytes.TrimSpace(raw)) == `"auto"` {
		return 0, false
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || v != math.Trunc(v) || math.Abs(v) > 1e9 {
		f.Add(param, `use "auto" or a whole number`)
		return 0, false
	}
	return int(v), true
}

func autoFloat(f apperr.FieldErrors, param string, raw json.RawMessage) (float64, bool) {
	if isNull(raw) || string(bytes.TrimSpace(raw)) == `"auto"` {
		return 0, false
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		f.Add(param, `use "auto" or a number`)
		return 0, false
	}
	return v, true
}

// resolveModel maps the request's model onto a catalog base model: its id,
// or an OpenAI model name the operator mapped in the catalog.
func resolveModel(c *catalog.Catalog, model string) (catalog.BaseModel, *apperr.Error) {
	if m, ok := c.Model(model); ok {
		return m, nil
	}
	if id, ok := c.OpenAI.ModelAliases[model]; ok {
		if m, ok := c.Model(id); ok {
			return m, nil
		}
	}
	var ids []string
	for _, m := range c.BaseModels {
		ids = append(ids, m.ID)
	}
	what := fmt.Sprintf("%q is not a base model here", model)
	switch {
	case model == "":
		what = "choose a base model"
	case strings.HasPrefix(model, "ft:"):
		what = fmt.Sprintf("%q is a fine-tuned model; continuing from one is not supported: fine-tune its base model", model)
	case strings.HasPrefix(model, "gpt-") || strings.HasPrefix(model, "o1") || strings.HasPrefix(model, "o3") || strings.HasPrefix(model, "o4"):
		what = fmt.Sprintf("%q is an OpenAI model, which BrightRun cannot train", model)
	}
	return catalog.BaseModel{}, apperr.Validation("model not found", map[string]string{
		"model": what + "; available models: " + strings.Join(ids, ", ") + " (an operator can map OpenAI names onto them in the catalog's openai.model_aliases)"}).WithCode("model_not_found")
}

// plan validates everything in the request that does not need the file.
// "auto" resolves to the preset's value (n_epochs, batch_size) and to a
// multiplier of 1; the learning rate is the preset's × the multiplier.
func plan(c *catalog.Catalog, r *CreateJobRequest) (Plan, error) {
	f := apperr.FieldErrors{}
	if !isNull(r.Integrations) && string(bytes.TrimSpace(r.Integrations)) != "[]" {
		f.Add("integrations", "integrations (Weights & Biases) are not supported: leave them out; BrightRun shows the metrics on the job's page and in the events")
	}
	hp, prefix := r.Hyperparameters, "hyperparameters"
	fromMethod := false
	if r.Method != nil {
		switch r.Method.Type {
		case "supervised":
		case "dpo", "reinforcement":
			f.Add("method.type", fmt.Sprintf("%q fine-tuning is not supported: use \"supervised\"", r.Method.Type))
		default:
			f.Add("method.type", `use "supervised"`)
		}
		if !isNull(r.Method.DPO) {
			f.Add("method.dpo", "DPO is not supported: leave method.dpo out")
		}
		if !isNull(r.Method.Reinforcement) {
			f.Add("method.reinforcement", "reinforcement fine-tuning is not supported: leave method.reinforcement out")
		}
		if r.Method.Supervised != nil && r.Method.Supervised.Hyperparameters != nil {
			if hp != nil {
				f.Add("hyperparameters", "send the hyperparameters once: in method.supervised.hyperparameters (hyperparameters is the deprecated form)")
			}
			hp, prefix, fromMethod = r.Method.Supervised.Hyperparameters, "method.supervised.hyperparameters", true
		}
	}
	if r.Suffix != nil && *r.Suffix != "" && !suffixRE.MatchString(*r.Suffix) {
		f.Add("suffix", "use 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if r.Seed != nil && (*r.Seed < 0 || *r.Seed > math.MaxInt32) {
		f.Add("seed", fmt.Sprintf("use a whole number from 0 to %d", math.MaxInt32))
	}
	if len(r.Metadata) > 16 {
		f.Add("metadata", "use at most 16 keys")
	}
	for k, v := range r.Metadata {
		if utf8.RuneCountInString(k) > 64 || k == "" {
			f.Add("metadata", "keys have 1 to 64 characters")
		}
		if utf8.RuneCountInString(v) > 512 {
			f.Add("metadata."+k, "values have at most 512 characters")
		}
	}
	if r.TrainingFile == "" {
		f.Add("training_file", "give the id of a file uploaded with purpose fine-tune")
	}
	preset, _ := c.Preset(PresetID)
	p := Plan{PresetID: PresetID, Hyper: preset.Hyperparameters, HyperFromMethod: fromMethod, LearningRateMultiplier: 1, BatchAuto: true}
	c.ResolveHyperparameters(PresetID, &p.Hyper)
	if hp != nil {
		if n, ok := autoInt(f, prefix+".n_epochs", hp.NEpochs); ok {
			if n < catalog.MinEpochs || n > catalog.MaxEpochs {
				f.Add(prefix+".n_epochs", fmt.Sprintf("use \"auto\" or %d to %d", catalog.MinEpochs, catalog.MaxEpochs))
			}
			p.Hyper.NumEpochs = n
		}
		if n, ok := autoInt(f, prefix+".batch_size", hp.BatchSize); ok {
			if n < catalog.MinBatchSize || n > catalog.MaxBatchSize {
				f.Add(prefix+".batch_size", fmt.Sprintf("use \"auto\" or %d to %d", catalog.MinBatchSize, catalog.MaxBatchSize))
			}
			p.Hyper.BatchSize, p.BatchAuto = n, false
		}
		if m, ok := autoFloat(f, prefix+".learning_rate_multiplier", hp.LearningRateMultiplier); ok {
			base := p.Hyper.LearningRate
			lr := base * m
			if m <= 0 || lr < catalog.MinLearningRate || lr > catalog.MaxLearningRate {
				f.Add(prefix+".learning_rate_multiplier", fmt.Sprintf("use \"auto\" (1) or a multiplier from %g to %g: the learning rate is %g × the multiplier and must stay within %g to %g",
					catalog.MinLearningRate/base, catalog.MaxLearningRate/base, base, catalog.MinLearningRate, catalog.MaxLearningRate))
			}
			p.LearningRateMultiplier, p.Hyper.LearningRate = m, lr
		}
	}
	model, merr := resolveModel(c, r.Model)
	if merr != nil {
		if f.Err() == nil {
			return p, merr // alone: with OpenAI's code model_not_found
		}
		f.Add("model", merr.Details.(map[string]string)["model"])
		return p, f.Err()
	}
	p.Hyper.BaseModel = model.ID
	if r.Seed != nil {
		seed := *r.Seed
		p.Hyper.Seed = &seed
	}
	p.NEpochs, p.BatchSize = p.Hyper.NumEpochs, p.Hyper.BatchSize
	return p, f.Err()
}
