package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// modelWithEval completes a job (through the job lifecycle) whose eval.json
// has the given samples_from and quality metrics.
func modelWithEval(t *testing.T, s *testserver.Server, userID, datasetID, samplesFrom, quality string) string {
	ev, _ := json.Marshal(map[string]any{"samples_from": samplesFrom, "samples": []map[string]string{{"prompt": "p", "base": "b", "adapter": "a"}}})
	return completedFixture(t, s, userID, datasetID, store.ArtifactCreateParams{Name: "m-" + samplesFrom,
		QualityMetrics: fixtureDoc[jobdoc.Quality](t, quality), Artifacts: fixtureDoc[jobdoc.Artifacts](t, `{"files":[],"eval":`+string(ev)+`}`)})
}

// TestModelPageHeldOutOnlyWithValidation: the model page calls its sample
// generations held-out only when their prompts came from a validation split.
func TestModelPageHeldOutOnlyWithValidation(t *testing.T) {
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "heldout@example.com")
	d := storetest.NewDataset(t, s.App.Store, c.UserID, "d")
	val := modelWithEval(t, s, c.UserID, d.ID, "validation", `{"perplexity_improvement_pct": 20}`)
	train := modelWithEval(t, s, c.UserID, d.ID, "train", `{}`)
	page := func(id string) string {
		r := c.Do("GET", "/models/"+id, nil)
		if r.Status != 200 {
			t.Fatalf("model page: %d", r.Status)
		}
		return string(r.Body)
	}
	if p := page(val); !strings.Contains(p, "Generations for held-out prompts") {
		t.Fatal("a model with a validation split does not call its prompts held-out")
	}
	if p := page(train); strings.Contains(p, "held-out prompts") || !strings.Contains(p, "there was no validation split") {
		t.Fatal("a model without a validation split calls its prompts held-out")
	}
}
