package jobdoc

import (
	"encoding/json"
	"testing"
)

func f(v float64) *float64 { return &v }

func TestMetricsThenKeepsTheLastKnownLosses(t *testing.T) {
	prev := Metrics{Step: 10, TrainingLoss: f(2), ValidationLoss: f(2.5), LearningRate: f(1e-4), Throughput: f(900), GPUUtilization: f(90), GPUMemoryGB: f(11), MFU: f(0.3), GradientNorm: f(1)}
	got := prev.Then(Metrics{Step: 12, TrainingLoss: f(1.9)})
	if got.Step != 12 || *got.TrainingLoss != 1.9 || *got.ValidationLoss != 2.5 || *got.LearningRate != 1e-4 || *got.Throughput != 900 || *got.GPUUtilization != 90 {
		t.Fatalf("carried: %+v", got)
	}
	// Memory, MFU and gradient norm describe the newest step only.
	if got.GPUMemoryGB != nil || got.MFU != nil || got.GradientNorm != nil {
		t.Fatalf("not carried: %+v", got)
	}
}

func TestWorldSizeOrZero(t *testing.T) {
	for _, c := range []struct {
		v    *float64
		want int
	}{{nil, 0}, {f(1), 1}, {f(4), 4}, {f(0), 0}, {f(1.5), 0}, {f(2048), 0}, {f(-2), 0}} {
		if got := (Summary{WorldSize: c.v}).WorldSizeOrZero(); got != c.want {
			t.Errorf("world_size %v: %d, want %d", c.v, got, c.want)
		}
	}
}

// The stored quality document keeps its public shape: absent metrics are
// left out, the final training loss is always there (null when unknown).
func TestQualityJSON(t *testing.T) {
	b, err := json.Marshal(Quality{PerplexityImprovementPct: f(39.6)})
	if err != nil || string(b) != `{"perplexity_improvement_pct":39.6,"final_training_loss":null}` {
		t.Fatalf("%s %v", b, err)
	}
}
