package estimate

import (
	"testing"

	"github.com/brightrun/brightrun/internal/training/catalog"
)

// Measured overheads replace the default ones once runs are calibrated.
func TestCalibratedOverhead(t *testing.T) {
	c := catalog.Default()
	m, _ := c.Model("HuggingFaceTB/SmolLM2-135M-Instruct")
	g, _ := c.GPU("cpu-local")
	h := c.Presets[0].Hyperparameters
	h.BaseModel, h.BatchSize = m.ID, 1
	in := Input{TrainTokens: 100_000, EvalTokens: 10_000, Examples: 40, Hyper: h, Model: m, GPU: g, NumGPUs: 1}
	def := Estimate(in)
	in.Calibration = &Calibration{TokensPerSecond: 200, Runs: 2, OverheadSeconds: 12}
	cal := Estimate(in)
	want := (float64(cal.TokensUsed)/200 + 12) / 3600
	if d := cal.EstimatedDurationHours - want; d > 1e-3 || d < -1e-3 {
		t.Fatalf("calibrated duration %.4f h, want %.4f h", cal.EstimatedDurationHours, want)
	}
	if cal.OverheadsHours["measured"] == 0 || def.OverheadsHours["model_load"] == 0 {
		t.Fatalf("overheads: default %v calibrated %v", def.OverheadsHours, cal.OverheadsHours)
	}
}
