package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Allowed ranges (inclusive).
const (
	MinLearningRate = 1e-6
	MaxLearningRate = 1e-3
	MinEpochs       = 1
	MaxEpochs       = 50
	MinLoraRank     = 1
	MaxLoraRank     = 256
	MinLoraAlpha    = 1
	MaxLoraAlpha    = 512
	MinLoraDropout  = 0.0
	MaxLoraDropout  = 0.5
	MinBatchSize    = 1
	MaxBatchSize    = 128
	MinSeqLength    = 64
	MaxSeqLength    = 32768
	MinWarmupSteps  = 0
	MaxWarmupSteps  = 10000
	MinWeightDecay  = 0.0
	MaxWeightDecay  = 1.0
	MinGradAccum    = 1
	MaxGradAccum    = 64
	MaxGPUs         = 8
)

// Defaults for the fields the spec's presets leave out.
const (
	DefaultPresetID = "balanced"
	// QuickDemoPresetID is the configure page's default on the local CPU.
	QuickDemoPresetID   = "quick-demo-cpu"
	DefaultMaxSeqLength = 2048
	DefaultGradAccum    = 1
)

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func rangeMsg(lo, hi float64) string {
	return "must be between " + fmtNum(lo) + " and " + fmtNum(hi)
}

func checkFloat(out map[string]string, field string, v, lo, hi float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		out[field] = rangeMsg(lo, hi)
	}
}

func checkInt(out map[string]string, field string, v, lo, hi int) {
	if v < lo || v > hi {
		out[field] = rangeMsg(float64(lo), float64(hi))
	}
}

// ValidateHyperparameters checks every field against its allowed range. The
// result maps the JSON field name to a message stating the range; it is empty
// when everything is valid. base_model is only checked for presence (use
// ValidateForModel or Catalog.ValidateJob for the catalog and context checks).
func ValidateHyperparameters(h Hyperparameters) map[string]string {
	out := map[string]string{}
	if h.BaseModel == "" {
		out["base_model"] = "is required"
	}
	checkFloat(out, "learning_rate", h.LearningRate, MinLearningRate, MaxLearningRate)
	checkInt(out, "batch_size", h.BatchSize, MinBatchSize, MaxBatchSize)
	checkInt(out, "num_epochs", h.NumEpochs, MinEpochs, MaxEpochs)
	checkInt(out, "lora_rank", h.LoraRank, MinLoraRank, MaxLoraRank)
	checkInt(out, "lora_alpha", h.LoraAlpha, MinLoraAlpha, MaxLoraAlpha)
	checkFloat(out, "lora_dropout", h.LoraDropout, MinLoraDropout, MaxLoraDropout)
	checkInt(out, "warmup_steps", h.WarmupSteps, MinWarmupSteps, MaxWarmupSteps)
	checkFloat(out, "weight_decay", h.WeightDecay, MinWeightDecay, MaxWeightDecay)
	checkInt(out, "max_seq_length", h.MaxSeqLength, MinSeqLength, MaxSeqLength)
	checkInt(out, "gradient_accumulation_steps", h.GradientAccumulationSteps, MinGradAccum, MaxGradAccum)
	switch h.LRScheduler {
	case "", "cosine", "linear", "constant":
	default:
		out["lr_scheduler"] = "use cosine, linear or constant"
	}
	if msg := checkTargetModules(h.TargetModules); msg != "" {
		out["target_modules"] = msg
	}
	return out
}

// projections are the layer names target_modules may list (Llama, Mistral,
// Qwen and SmolLM naming).
var projections = map[string]bool{"q_proj": true, "k_proj": true, "v_proj": true, "o_proj": true, "gate_proj": true, "up_proj": true, "down_proj": true}

func checkTargetModules(m []string) string {
	if len(m) == 0 || (len(m) == 1 && m[0] == "all-linear") {
		return ""
	}
	seen := map[string]bool{}
	for _, x := range m {
		if !projections[x] || seen[x] {
			return `use ["all-linear"] or distinct names among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj`
		}
		seen[x] = true
	}
	return ""
}

// ValidateForModel is ValidateHyperparameters plus the checks that need the
// model: base_model names it, max_seq_length ≤ its context length and
// lora_rank ≤ the smallest dimension of a targeted layer.
func ValidateForModel(h Hyperparameters, m BaseModel) map[string]string {
	out := ValidateHyperparameters(h)
	if h.BaseModel != "" && h.BaseModel != m.ID {
		out["base_model"] = fmt.Sprintf("must be %s", m.ID)
	}
	if _, bad := out["max_seq_length"]; !bad && m.ContextLength > 0 && h.MaxSeqLength > m.ContextLength {
		hi := min(MaxSeqLength, m.ContextLength)
		out["max_seq_length"] = rangeMsg(MinSeqLength, float64(hi)) + " (" + m.ID + " has a context of " + strconv.Itoa(m.ContextLength) + " tokens)"
	}
	if _, bad := out["lora_rank"]; !bad {
		if d := m.Arch.KVDim(); d > 0 && h.LoraRank > d {
			out["lora_rank"] = rangeMsg(MinLoraRank, float64(min(MaxLoraRank, d))) + " (the smallest layer of " + m.ID + " is " + strconv.Itoa(d) + " wide)"
		}
	}
	return out
}

// ValidateJob checks the hyperparameters against the ranges and against the
// catalog: base_model must be a catalog entry.
func (c *Catalog) ValidateJob(h Hyperparameters) map[string]string {
	m, ok := c.Model(h.BaseModel)
	if !ok {
		out := ValidateHyperparameters(h)
		if h.BaseModel != "" {
			out["base_model"] = fmt.Sprintf("%q is not in the model catalog (GET /api/catalog lists them)", h.BaseModel)
		}
		return out
	}
	return ValidateForModel(h, m)
}

// presetOrDefault returns the preset, else "balanced", else the first one.
func (c *Catalog) presetOrDefault(id string) Preset {
	if p, ok := c.Preset(id); ok {
		return p
	}
	if p, ok := c.Preset(DefaultPresetID); ok {
		return p
	}
	if len(c.Presets) > 0 {
		return c.Presets[0]
	}
	return Preset{}
}

// ResolveHyperparameters fills the zero fields of h from the preset (an
// unknown or empty presetID means "balanced") and then from the defaults.
//
// Only fields for which zero is not a valid value are filled: base_model,
// learning_rate, batch_size, num_epochs, lora_rank, lora_alpha,
// max_seq_length and gradient_accumulation_steps. lora_dropout, warmup_steps
// and weight_decay are kept as given, since 0 is a legitimate choice; use
// ResolveJSON to take them from the preset when the client omitted them.
func (c *Catalog) ResolveHyperparameters(presetID string, h *Hyperparameters) {
	p := c.presetOrDefault(presetID).Hyperparameters
	if h.BaseModel == "" {
		h.BaseModel = p.BaseModel
	}
	if h.LearningRate == 0 {
		h.LearningRate = p.LearningRate
	}
	if h.BatchSize == 0 {
		h.BatchSize = p.BatchSize
	}
	if h.NumEpochs == 0 {
		h.NumEpochs = p.NumEpochs
	}
	if h.LoraRank == 0 {
		h.LoraRank = p.LoraRank
	}
	if h.LoraAlpha == 0 {
		h.LoraAlpha = p.LoraAlpha
	}
	if h.MaxSeqLength == 0 {
		h.MaxSeqLength = p.MaxSeqLength
	}
	if h.MaxSeqLength == 0 {
		h.MaxSeqLength = DefaultMaxSeqLength
	}
	if h.GradientAccumulationSteps == 0 {
		h.GradientAccumulationSteps = p.GradientAccumulationSteps
	}
	if h.GradientAccumulationSteps == 0 {
		h.GradientAccumulationSteps = DefaultGradAccum
	}
}

// ResolveJSON starts from the preset's hyperparameters (unknown or empty
// presetID: "balanced") and overlays the fields present in raw (a JSON
// object; null or empty means none), so an explicit 0 is kept and an omitted
// field takes the preset's value (gaps in the preset itself are filled as
// ResolveHyperparameters does). Unknown fields are refused.
func (c *Catalog) ResolveJSON(presetID string, raw json.RawMessage) (Hyperparameters, error) {
	h := c.presetOrDefault(presetID).Hyperparameters
	// Fill gaps of the preset itself first, then overlay what the client
	// sent, so an explicit out-of-range value (batch_size 0) is validated,
	// never silently replaced.
	c.ResolveHyperparameters(presetID, &h)
	if t := bytes.TrimSpace(raw); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			return Hyperparameters{}, err // the caller names the field (apperr.FromJSONField)
		}
	}
	return h, nil
}
