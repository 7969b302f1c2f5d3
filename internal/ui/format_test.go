package ui

import (
	"encoding/json"
	"testing"
)

func TestLossChangeSaysHigherOrLower(t *testing.T) {
	for raw, want := range map[string]string{
		`{"loss_reduction_pct": 15.84}`: "15.8% lower",
		`{"loss_reduction_pct": -15.8}`: "15.8% higher", // the loss went up
		`{"loss_reduction_pct": 0.01}`:  "unchanged",
		`{}`:                            "",
	} {
		if got := lossChange(json.RawMessage(raw), "loss_reduction_pct"); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}

func TestLabelsAreWords(t *testing.T) {
	for id, want := range map[string]string{
		"loading_model": "Loading model", "initializing": "Starting", "job_started": "Job started",
		"max_seq_length": "Max sequence length", "busy": "Running a job", "some_new_id": "Some new id", "": "",
	} {
		if got := Label(id); got != want {
			t.Errorf("Label(%q) = %q, want %q", id, got, want)
		}
	}
}
