package ui

import (
	"testing"
)

func TestLossChangeSaysHigherOrLower(t *testing.T) {
	pct := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		pct  *float64
		want string
	}{{pct(15.84), "15.8% lower"}, {pct(-15.8), "15.8% higher"} /* the loss went up */, {pct(0.01), "unchanged"}, {nil, ""}} {
		if got := lossChange(c.pct); got != c.want {
			t.Errorf("%v: %q, want %q", c.pct, got, c.want)
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
