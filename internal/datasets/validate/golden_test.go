package validate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// goldenSplit is testdata/golden/split.json: cases of the train/validation
// split rule that the trainer's tests (trainer/tests/test_golden.py) check
// against its own implementation, so the two sides cannot drift apart.
const goldenSplit = "../../../testdata/golden/split.json"

type splitCase struct {
	Name       string   `json:"name"`
	Share      float64  `json:"share"`
	Keys       []string `json:"keys"`
	Validation []string `json:"validation"` // sorted
}

func splitCases() []splitCase {
	seq := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	return []splitCase{
		{Name: "empty", Share: 0.1, Keys: []string{}},
		{Name: "one conversation stays in training", Share: 0.5, Keys: []string{"only"}},
		{Name: "two conversations, one held out", Share: 0.1, Keys: []string{"a", "b"}},
		{Name: "duplicates count once", Share: 0.5, Keys: []string{"x", "y", "x", "z", "y", "w"}},
		{Name: "12 at 10% rounds up to 1", Share: 0.1, Keys: seq("conv-", 12)},
		{Name: "25 at 10% is 2.5: half away from zero gives 3", Share: 0.1, Keys: seq("conv-", 25)},
		{Name: "44 at 10%", Share: 0.1, Keys: seq("EQ-", 44)},
		{Name: "share 0 holds nothing out", Share: 0, Keys: seq("k", 10)},
		{Name: "share 1 keeps one for training", Share: 1, Keys: seq("k", 5)},
		{Name: "unicode and whitespace keys", Share: 0.4, Keys: []string{"héllo", "日本語の会話", "tab\there", "emoji 🙂", "  spaced  "}},
	}
}

func TestSplitGolden(t *testing.T) {
	cases := splitCases()
	for i := range cases {
		v := ValidationSplit(cases[i].Keys, cases[i].Share)
		cases[i].Validation = make([]string, 0, len(v))
		for k := range v {
			cases[i].Validation = append(cases[i].Validation, k)
		}
		slices.Sort(cases[i].Validation)
	}
	if os.Getenv("BRIGHTRUN_UPDATE_GOLDEN") == "1" {
		b, _ := json.MarshalIndent(cases, "", "  ")
		if err := os.WriteFile(filepath.FromSlash(goldenSplit), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.FromSlash(goldenSplit))
	if err != nil {
		t.Fatalf("%v (regenerate with BRIGHTRUN_UPDATE_GOLDEN=1)", err)
	}
	var want []splitCase
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(cases) {
		t.Fatalf("golden has %d cases, the rule %d", len(want), len(cases))
	}
	for i, c := range cases {
		if !slices.Equal(c.Validation, want[i].Validation) || c.Name != want[i].Name {
			t.Errorf("%s: validation %v, golden %v", c.Name, c.Validation, want[i].Validation)
		}
	}
}
