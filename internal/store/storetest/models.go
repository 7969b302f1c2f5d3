package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

// NewModel finishes a new job of the user with a model artifact whose
// quality metrics are quality, as of at.
func NewModel(t testing.TB, s store.Store, userID, datasetID, name string, quality jobdoc.Quality, at time.Time) store.Model {
	t.Helper()
	return NewModelWith(t, s, userID, datasetID, store.ArtifactCreateParams{Name: name, QualityMetrics: quality}, at)
}

// NewModelWith finishes a new job of the user with the model artifact a
// (its ID is generated), as of at.
func NewModelWith(t testing.TB, s store.Store, userID, datasetID string, a store.ArtifactCreateParams, at time.Time) store.Model {
	t.Helper()
	a.ID = uuid.NewString()
	sys := store.AsSystem(context.Background())
	j := NewJob(t, s, userID, datasetID, "MODEL-FIXTURE")
	ag, err := s.AgentCreate(sys, "fixture", "model-fixture-"+j.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.JobClaim(sys, store.ClaimParams{AgentID: ag.ID, GPUType: "MODEL-FIXTURE", GPUCount: 1, TokenHash: hashFor, Now: at, Lease: time.Minute, Decide: claimEffects()}); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	e, err := s.JobFinish(sys, store.FinishParams{JobID: j.ID, Now: at, Decide: fixed(store.Effects{Status: store.JobCompleted}),
		Artifact: &a})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.ModelGet(store.WithUser(context.Background(), userID), userID, *e.ArtifactID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testModelsByQuality: the quality order holds across pages, not only
// within one; unrated models come last, newest first among equals.
func testModelsByQuality(t *testing.T, s store.Store) {
	u := NewUser(t, s, "quality@example.com")
	d := NewDataset(t, s, u.ID, "quality data")
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	pct := func(v float64) jobdoc.Quality { return jobdoc.Quality{PerplexityImprovementPct: &v} }
	// "text" has metrics but no improvement (no validation split): unrated.
	for i, q := range []jobdoc.Quality{pct(5), {}, pct(40.5), {Samples: new(int)}, pct(-3), pct(20)} {
		NewModel(t, s, u.ID, d.ID, []string{"five", "unrated-old", "forty", "text", "minus-three", "twenty"}[i], q, at.Add(time.Duration(i)*time.Minute))
	}
	var names []string
	for page := 1; page <= 3; page++ {
		list, total, err := s.ModelList(store.WithUser(context.Background(), u.ID), store.ModelListParams{UserID: u.ID, Sort: "quality", Page: page, Limit: 2})
		if err != nil || total != 6 {
			t.Fatalf("page %d: %v total %d", page, err, total)
		}
		for _, m := range list {
			names = append(names, m.Name)
		}
	}
	if got := strings.Join(names, ","); got != "forty,twenty,five,minus-three,text,unrated-old" {
		t.Fatalf("by quality across pages: %s", got)
	}
}
