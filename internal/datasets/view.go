package datasets

import (
	"sort"

	"github.com/brightrun/brightrun/internal/datasets/validate"
	"github.com/brightrun/brightrun/internal/store"
)

// DetailView is what the dataset page shows, decoded from the row.
type DetailView struct {
	D             store.Dataset
	Stats         *validate.Stats
	Sample        []validate.Example
	Errors        []validate.Issue
	Warnings      []validate.Issue
	Distributions []Distribution
}

// Distribution is one bar chart.
type Distribution struct {
	Title string
	Bars  []Bar
}

// Bar is one bar: label, count and width in percent of the largest.
type Bar struct {
	Label   string
	Count   int
	Percent float64
}

func newDetailView(d store.Dataset) DetailView {
	v := DetailView{D: d, Stats: d.Statistics, Sample: d.SampleData, Errors: d.ValidationErrors, Warnings: d.ValidationWarnings}
	if d.Statistics != nil {
		v.Distributions = distributions(*d.Statistics)
	}
	return v
}

func distributions(st validate.Stats) []Distribution {
	var out []Distribution
	for _, x := range []struct {
		title string
		m     map[string]int
	}{{"Personas", st.PersonaDistribution}, {"Emotional arcs", st.EmotionalArcDistribution}, {"Topics", st.TopicDistribution}} {
		if len(x.m) == 0 {
			continue
		}
		bars := make([]Bar, 0, len(x.m))
		max := 0
		for k, c := range x.m {
			bars = append(bars, Bar{Label: k, Count: c})
			if c > max {
				max = c
			}
		}
		sort.Slice(bars, func(i, j int) bool {
			if bars[i].Count != bars[j].Count {
				return bars[i].Count > bars[j].Count
			}
			return bars[i].Label < bars[j].Label
		})
		if len(bars) > 12 {
			bars = bars[:12]
		}
		for i := range bars {
			bars[i].Percent = 100 * float64(bars[i].Count) / float64(max)
		}
		out = append(out, Distribution{Title: x.title, Bars: bars})
	}
	return out
}
