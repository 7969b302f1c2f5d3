// Package costdoc defines, once, the details document of a cost record: one
// Go type per cost type (compute, storage, inference). The jobs, costs and
// inference domains write them, the store keeps them in cost_records.details
// (encoded and decoded in internal/store/sqlstore/scan.go, by the record's
// cost_type), and the API, the CSV export and the costs page read them.
//
// Field names are the public JSON shape (docs/api.md, "Costs"): renaming one
// is a breaking change.
package costdoc

import (
	"encoding/json"
	"fmt"
)

// Cost types (cost_records.cost_type).
const (
	TypeCompute   = "compute"
	TypeStorage   = "storage"
	TypeInference = "inference"
)

// Compute is the details of a job's compute cost record, written when the
// job ends.
type Compute struct {
	GPUType     string  `json:"gpu_type"`
	NumGPUs     int     `json:"num_gpus"`
	Seconds     float64 `json:"seconds"`
	Attempts    int     `json:"attempts"`
	RatePerHour float64 `json:"rate_per_hour"`
	Status      string  `json:"status"`
}

// Storage is the details of a user's daily storage cost record.
type Storage struct {
	Day           string  `json:"day"` // YYYY-MM-DD
	GB            float64 `json:"gb"`
	DatasetBytes  int64   `json:"dataset_bytes"`
	ArtifactBytes int64   `json:"artifact_bytes"`
	PricePerGBMon float64 `json:"price_per_gb_month"`
	AmountExact   float64 `json:"amount_exact"`
}

// Inference is the details of a finished inference request's cost record.
type Inference struct {
	Model                 string  `json:"model"`
	ModelID               *string `json:"model_id,omitempty"`
	GPUType               string  `json:"gpu_type"`
	PromptTokens          int     `json:"prompt_tokens"`
	CompletionTokens      int     `json:"completion_tokens"`
	PricePerMillionTokens float64 `json:"price_per_million_tokens"`
	AmountExact           float64 `json:"amount_exact"`
	Source                string  `json:"source"`
}

// Details is a cost record's details: the one document of its cost type
// (all nil: no details, JSON null). Its JSON form is that document alone,
// so the record's cost_type says which one it is.
type Details struct {
	Compute   *Compute
	Storage   *Storage
	Inference *Inference
}

// Type is the cost type of the document held ("" when none).
func (d Details) Type() string {
	switch {
	case d.Compute != nil:
		return TypeCompute
	case d.Storage != nil:
		return TypeStorage
	case d.Inference != nil:
		return TypeInference
	}
	return ""
}

// MarshalJSON writes the document held (null when none).
func (d Details) MarshalJSON() ([]byte, error) {
	switch {
	case d.Compute != nil:
		return json.Marshal(d.Compute)
	case d.Storage != nil:
		return json.Marshal(d.Storage)
	case d.Inference != nil:
		return json.Marshal(d.Inference)
	}
	return []byte("null"), nil
}

// Decode reads a details document of cost type typ (empty or null: none).
// A record's JSON does not name its type; its cost_type does, so the store
// and API clients decode with it.
func Decode(typ string, raw []byte) (Details, error) {
	var d Details
	if len(raw) == 0 || string(raw) == "null" {
		return d, nil
	}
	var target any
	switch typ {
	case TypeCompute:
		d.Compute = &Compute{}
		target = d.Compute
	case TypeStorage:
		d.Storage = &Storage{}
		target = d.Storage
	case TypeInference:
		d.Inference = &Inference{}
		target = d.Inference
	default:
		return Details{}, fmt.Errorf("decode cost details: unknown cost type %q", typ)
	}
	if err := json.Unmarshal(raw, target); err != nil {
		return Details{}, fmt.Errorf("decode %s cost details: %w", typ, err)
	}
	return d, nil
}
