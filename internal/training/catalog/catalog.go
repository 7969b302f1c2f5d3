// Package catalog holds BrightRun's training catalog: hyperparameter presets,
// base models and GPU options, with validation of the catalog itself and of a
// job's hyperparameters.
//
// The embedded default (default.json) can be replaced by an operator-edited
// JSON file with the same schema (see docs/estimates.md, BRIGHTRUN_CATALOG).
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
)

//go:embed default.json
var defaultJSON []byte

// Hyperparameters are a job's training settings. JSON names are the spec's
// HyperparameterConfig plus the trainer's extras.
type Hyperparameters struct {
	BaseModel                 string  `json:"base_model"`
	LearningRate              float64 `json:"learning_rate"`
	BatchSize                 int     `json:"batch_size"`
	NumEpochs                 int     `json:"num_epochs"`
	LoraRank                  int     `json:"lora_rank"`
	LoraAlpha                 int     `json:"lora_alpha"`
	LoraDropout               float64 `json:"lora_dropout"`
	WarmupSteps               int     `json:"warmup_steps"`
	WeightDecay               float64 `json:"weight_decay"`
	MaxSeqLength              int     `json:"max_seq_length"`
	GradientAccumulationSteps int     `json:"gradient_accumulation_steps"`
	// GradientCheckpointing trades ~25% throughput for far less activation
	// memory (the trainer's gradient_checkpointing setting).
	GradientCheckpointing bool `json:"gradient_checkpointing,omitempty"`
	// LRScheduler is the learning-rate schedule after warmup: cosine (the
	// trainer's default), linear or constant.
	LRScheduler string `json:"lr_scheduler,omitempty"`
	// TargetModules are the layers LoRA adapts: ["all-linear"] (the
	// trainer's default) or projection names such as q_proj, v_proj. The
	// estimates assume all linear layers (an upper bound).
	TargetModules []string `json:"target_modules,omitempty"`
	// Seed fixes the trainer's random seed (absent: the trainer's default,
	// 42). The OpenAI face's seed lands here.
	Seed *int64 `json:"seed,omitempty"`
	// ValidationDatasetID is one of the user's datasets evaluated whole
	// instead of the held-out share of the training dataset (the OpenAI
	// face's validation_file).
	ValidationDatasetID string `json:"validation_dataset_id,omitempty"`
}

// Preset is a named set of hyperparameters.
type Preset struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	Hyperparameters Hyperparameters `json:"hyperparameters"`
}

// Arch is the part of a model's architecture the estimates need.
type Arch struct {
	Layers       int `json:"layers"`
	Hidden       int `json:"hidden"`
	Heads        int `json:"heads"`
	KVHeads      int `json:"kv_heads"`
	Intermediate int `json:"intermediate"`
	Vocab        int `json:"vocab"`
	// TiedEmbeddings: the output head shares the input embedding matrix.
	TiedEmbeddings bool `json:"tied_embeddings,omitempty"`
}

// HeadDim is Hidden / Heads.
func (a Arch) HeadDim() int {
	if a.Heads == 0 {
		return 0
	}
	return a.Hidden / a.Heads
}

// KVDim is the width of the k and v projections (KVHeads × HeadDim).
func (a Arch) KVDim() int { return a.KVHeads * a.HeadDim() }

// BaseModel is a model jobs may fine-tune.
type BaseModel struct {
	ID              string `json:"id"`
	DisplayName     string `json:"display_name"`
	Parameters      int64  `json:"parameters"`
	ContextLength   int    `json:"context_length"`
	HasChatTemplate bool   `json:"has_chat_template"`
	License         string `json:"license"`
	TrustRemoteCode bool   `json:"trust_remote_code"`
	// Local: small enough to train on the server's CPU (the demo).
	Local bool `json:"local"`
	Arch  Arch `json:"arch"`
	// SizeClass keys GPU.Throughput, e.g. "0.1b", "7b", "8b".
	SizeClass string `json:"size_class"`
	Notes     string `json:"notes,omitempty"`
}

// GPU is an accelerator option (or the local CPU).
type GPU struct {
	ID             string  `json:"id"`       // stable, e.g. "nvidia-a100-80gb", "cpu-local"
	GPUType        string  `json:"gpu_type"` // the spec's gpu_type value, e.g. "A100-80GB"
	DisplayName    string  `json:"display_name"`
	MemoryGB       float64 `json:"memory_gb"` // GiB usable by one process (host RAM budget for the CPU)
	CostPerGPUHour float64 `json:"cost_per_gpu_hour"`
	// InferenceCostPerMillionTokens prices generation on an agent of this
	// type (prompt + completion tokens); 0 for the local CPU.
	InferenceCostPerMillionTokens float64 `json:"inference_cost_per_million_tokens"`
	AllowedCounts                 []int   `json:"allowed_counts"`
	BF16PeakTFLOPS                float64 `json:"bf16_peak_tflops"` // dense, no sparsity; 0 for the CPU
	CPU                           bool    `json:"cpu"`
	// CPUBF16Weights (CPU entries only): the CPU has bf16 matrix units
	// (AMX-BF16 or AVX512-BF16), so the trainer keeps the frozen weights in
	// bf16 with bf16 autocast there (its default on such CPUs), and the memory
	// estimate sizes 2-byte weights and bf16-weights activations instead of fp32.
	CPUBF16Weights bool `json:"cpu_bf16_weights,omitempty"`
	// CPUBF16FromHost (CPU entries only): CPUBF16Weights follows the server's
	// own CPU, for the option whose agent runs on the server's machine (the
	// embedded default's local agent): see ApplyHostCPU.
	CPUBF16FromHost bool `json:"cpu_bf16_weights_from_host,omitempty"`
	// Throughput: default training tokens/s per GPU for LoRA, by model SizeClass.
	Throughput  map[string]float64 `json:"throughput"`
	PriceSource string             `json:"price_source"`
}

// ApplyHostCPU sets cpu_bf16_weights on the CPU options marked
// cpu_bf16_weights_from_host to whether the server's own CPU has bf16 matrix
// units (hostBF16), as the trainer decides for itself on that CPU; options
// that set cpu_bf16_weights explicitly keep it. Called once at start-up,
// before the catalog is shared.
func (c *Catalog) ApplyHostCPU(hostBF16 bool) {
	for i := range c.GPUs {
		if c.GPUs[i].CPUBF16FromHost && !c.GPUs[i].CPUBF16Weights {
			c.GPUs[i].CPUBF16Weights = hostBF16
		}
	}
}

// AllowsCount reports whether n GPUs of this type may be requested.
func (g GPU) AllowsCount(n int) bool {
	for _, c := range g.AllowedCounts {
		if c == n {
			return true
		}
	}
	return false
}

// Catalog is the whole training catalog.
type Catalog struct {
	Presets    []Preset    `json:"presets"`
	BaseModels []BaseModel `json:"base_models"`
	GPUs       []GPU       `json:"gpus"`
	Notes      string      `json:"notes,omitempty"`
	// OpenAI configures the OpenAI-compatible face (/v1).
	OpenAI OpenAISettings `json:"openai,omitzero"`
}

// OpenAISettings are the operator's choices for /v1 fine-tuning.
type OpenAISettings struct {
	// ModelAliases maps OpenAI model names (e.g. "gpt-4o-mini-2024-07-18")
	// onto base model ids, so that unchanged scripts train that model.
	ModelAliases map[string]string `json:"model_aliases,omitempty"`
	// GPUType is the GPU /v1 jobs run on (a gpus[].id or gpu_type); empty:
	// the cheapest GPU the job fits on (the CPU only for local models).
	GPUType string `json:"gpu_type,omitempty"`
}

// Default returns a fresh copy of the embedded default catalog.
func Default() *Catalog {
	c, err := parse(defaultJSON, "default.json")
	if err != nil {
		panic("catalog: embedded default.json: " + err.Error())
	}
	return c
}

// DefaultJSON returns the embedded default catalog file (a starting point for
// operators).
func DefaultJSON() []byte { return bytes.Clone(defaultJSON) }

// Load reads and validates a catalog file; path "" means the embedded default.
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return parse(b, path)
}

// Parse decodes and validates catalog JSON.
func Parse(b []byte) (*Catalog, error) { return parse(b, "catalog") }

func parse(b []byte, name string) (*Catalog, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("catalog %s: invalid JSON: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("catalog %s: invalid JSON: data after the top-level object", name)
	}
	if err := checkFields(raw, reflect.TypeOf(Catalog{}), "$"); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	var c Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("catalog %s: %w", name, err)
	}
	return &c, nil
}

// checkFields refuses object keys that no struct field takes, naming the JSON path.
func checkFields(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // type errors are reported by json.Unmarshal
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[name] = f
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				known := make([]string, 0, len(fields))
				for n := range fields {
					known = append(known, n)
				}
				sort.Strings(known)
				return fmt.Errorf("unknown field %s.%s (allowed here: %s)", path, k, strings.Join(known, ", "))
			}
			if err := checkFields(obj[k], f.Type, path+"."+k); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range arr {
			if err := checkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			if err := checkFields(e, t.Elem(), path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks the catalog's internal consistency. The error lists every
// problem found, one per line.
func (c *Catalog) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Presets) == 0 {
		bad("presets: at least one preset is required")
	}
	if len(c.BaseModels) == 0 {
		bad("base_models: at least one base model is required")
	}
	if len(c.GPUs) == 0 {
		bad("gpus: at least one GPU option is required")
	}
	models := map[string]BaseModel{}
	for i, m := range c.BaseModels {
		p := fmt.Sprintf("base_models[%d]", i)
		if strings.TrimSpace(m.ID) == "" {
			bad("%s.id: required", p)
		} else if _, dup := models[m.ID]; dup {
			bad("%s.id: duplicate id %q", p, m.ID)
		}
		models[m.ID] = m
		if m.DisplayName == "" {
			bad("%s.display_name: required", p)
		}
		if m.Parameters <= 0 {
			bad("%s.parameters: must be > 0", p)
		}
		if m.ContextLength < MinSeqLength {
			bad("%s.context_length: must be ≥ %d", p, MinSeqLength)
		}
		if m.SizeClass == "" {
			bad("%s.size_class: required (keys gpus[].throughput)", p)
		}
		a := m.Arch
		if a.Layers <= 0 || a.Hidden <= 0 || a.Heads <= 0 || a.KVHeads <= 0 || a.Intermediate <= 0 || a.Vocab <= 0 {
			bad("%s.arch: layers, hidden, heads, kv_heads, intermediate and vocab must all be > 0", p)
		} else {
			if a.Hidden%a.Heads != 0 {
				bad("%s.arch: hidden (%d) must be a multiple of heads (%d)", p, a.Hidden, a.Heads)
			}
			if a.Heads%a.KVHeads != 0 {
				bad("%s.arch: heads (%d) must be a multiple of kv_heads (%d)", p, a.Heads, a.KVHeads)
			}
		}
	}
	ids, types := map[string]bool{}, map[string]bool{}
	for i, g := range c.GPUs {
		p := fmt.Sprintf("gpus[%d]", i)
		if strings.TrimSpace(g.ID) == "" {
			bad("%s.id: required", p)
		} else if ids[g.ID] {
			bad("%s.id: duplicate id %q", p, g.ID)
		}
		ids[g.ID] = true
		if strings.TrimSpace(g.GPUType) == "" {
			bad("%s.gpu_type: required", p)
		} else if types[strings.ToLower(g.GPUType)] {
			bad("%s.gpu_type: duplicate gpu_type %q", p, g.GPUType)
		}
		types[strings.ToLower(g.GPUType)] = true
		if g.DisplayName == "" {
			bad("%s.display_name: required", p)
		}
		if !finite(g.MemoryGB) || g.MemoryGB <= 0 {
			bad("%s.memory_gb: must be > 0", p)
		}
		if !finite(g.CostPerGPUHour) || g.CostPerGPUHour < 0 {
			bad("%s.cost_per_gpu_hour: must be ≥ 0", p)
		}
		if !finite(g.InferenceCostPerMillionTokens) || g.InferenceCostPerMillionTokens < 0 {
			bad("%s.inference_cost_per_million_tokens: must be ≥ 0", p)
		}
		if !finite(g.BF16PeakTFLOPS) || g.BF16PeakTFLOPS < 0 {
			bad("%s.bf16_peak_tflops: must be ≥ 0", p)
		}
		if len(g.AllowedCounts) == 0 {
			bad("%s.allowed_counts: at least one count is required", p)
		}
		seen := map[int]bool{}
		for j, n := range g.AllowedCounts {
			if n < 1 || n > MaxGPUs {
				bad("%s.allowed_counts[%d]: %d is not between 1 and %d", p, j, n, MaxGPUs)
			}
			if seen[n] {
				bad("%s.allowed_counts[%d]: duplicate count %d", p, j, n)
			}
			seen[n] = true
		}
		if g.CPUBF16Weights && !g.CPU {
			bad("%s.cpu_bf16_weights: only for a CPU option (\"cpu\": true); GPUs always hold bf16 weights", p)
		}
		if g.CPUBF16FromHost && !g.CPU {
			bad("%s.cpu_bf16_weights_from_host: only for a CPU option (\"cpu\": true)", p)
		}
		if g.CPU && (len(g.AllowedCounts) != 1 || g.AllowedCounts[0] != 1) {
			bad("%s.allowed_counts: a CPU option allows exactly [1]", p)
		}
		for k, v := range g.Throughput {
			if !finite(v) || v <= 0 {
				bad("%s.throughput.%s: must be > 0 tokens/s", p, k)
			}
		}
		if !g.CPU && g.BF16PeakTFLOPS == 0 && len(g.Throughput) == 0 {
			bad("%s: a GPU needs bf16_peak_tflops or throughput figures for estimates", p)
		}
	}
	pids := map[string]bool{}
	for i, pr := range c.Presets {
		p := fmt.Sprintf("presets[%d]", i)
		if strings.TrimSpace(pr.ID) == "" {
			bad("%s.id: required", p)
		} else if pids[pr.ID] {
			bad("%s.id: duplicate id %q", p, pr.ID)
		}
		pids[pr.ID] = true
		if pr.Name == "" {
			bad("%s.name: required", p)
		}
		h := pr.Hyperparameters
		m, ok := models[h.BaseModel]
		if !ok {
			bad("%s.hyperparameters.base_model: %q is not in base_models", p, h.BaseModel)
			for _, f := range sortedKeys(ValidateHyperparameters(h)) {
				if f != "base_model" {
					bad("%s.hyperparameters.%s: %s", p, f, ValidateHyperparameters(h)[f])
				}
			}
			continue
		}
		msgs := ValidateForModel(h, m)
		for _, f := range sortedKeys(msgs) {
			bad("%s.hyperparameters.%s: %s", p, f, msgs[f])
		}
	}
	for _, name := range sortedKeys(c.OpenAI.ModelAliases) {
		if _, ok := models[c.OpenAI.ModelAliases[name]]; !ok {
			bad("openai.model_aliases.%s: %q is not in base_models", name, c.OpenAI.ModelAliases[name])
		}
	}
	if g := c.OpenAI.GPUType; g != "" {
		if _, ok := c.GPU(g); !ok {
			bad("openai.gpu_type: %q is not in gpus", g)
		}
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Model returns the base model with this id.
func (c *Catalog) Model(id string) (BaseModel, bool) {
	for _, m := range c.BaseModels {
		if m.ID == id {
			return m, true
		}
	}
	return BaseModel{}, false
}

// GPU returns the GPU option whose ID equals id, or else whose GPUType equals
// id (case-insensitive).
func (c *Catalog) GPU(id string) (GPU, bool) {
	for _, g := range c.GPUs {
		if g.ID == id {
			return g, true
		}
	}
	for _, g := range c.GPUs {
		if strings.EqualFold(g.GPUType, id) {
			return g, true
		}
	}
	return GPU{}, false
}

// Preset returns the preset with this id.
func (c *Catalog) Preset(id string) (Preset, bool) {
	for _, p := range c.Presets {
		if p.ID == id {
			return p, true
		}
	}
	return Preset{}, false
}
