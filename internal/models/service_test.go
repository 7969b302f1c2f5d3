package models

import (
	"math"
	"testing"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/catalog"
)

func withPct(v float64) store.Model {
	return store.Model{QualityMetrics: jobdoc.Quality{PerplexityImprovementPct: &v}}
}

// The stars follow RatingRule's thresholds; no improvement figure (no
// validation split) or a non-number means no rating.
func TestRateModel(t *testing.T) {
	for _, c := range []struct {
		pct   float64
		stars int
	}{{50, 5}, {49.9, 4}, {30, 4}, {15, 3}, {5, 2}, {4.9, 1}, {-3, 1}} {
		r := RateModel(withPct(c.pct))
		if r == nil || r.Stars != c.stars || r.Value != c.pct {
			t.Errorf("%v%%: %+v, want %d stars", c.pct, r, c.stars)
		}
	}
	if r := RateModel(store.Model{}); r != nil {
		t.Errorf("unrated model rated: %+v", r)
	}
	if r := RateModel(withPct(math.NaN())); r != nil {
		t.Errorf("NaN rated: %+v", r)
	}
}

func TestArchiveName(t *testing.T) {
	if got := ArchiveName(store.Model{Name: `eq12 · Smol "v2"/ü`}); got != "eq12---Smol--v2---.tar.gz" {
		t.Fatalf("archive name %q", got)
	}
}

// The detail page lists the hyperparameters the job set, sorted by name,
// without the optional ones it left out.
func TestSettingsListsWhatWasSet(t *testing.T) {
	got, err := settings(catalog.Hyperparameters{BaseModel: "m", NumEpochs: 2, LRScheduler: "linear"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range got {
		keys = append(keys, s.Key)
		if s.Key == "target_modules" || s.Key == "seed" {
			t.Errorf("unset %s listed", s.Key)
		}
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] > keys[i] {
			t.Fatalf("not sorted: %v", keys)
		}
	}
	if len(keys) != 12 { // the 11 always written, and lr_scheduler
		t.Fatalf("settings %v", keys)
	}
}
