package launchers

import (
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/training/estimate"
)

func TestParseConfigDefaultsAndErrors(t *testing.T) {
	c, err := ParseConfig([]byte(`{"launchers":[{"name":"hpc","type":"slurm","max_agents":2,"max_hours":24,
		"gpu_types":{"H100-80GB":{"partition":"gpu","account":"ml"}},"slurm":{"trainer":"/opt/bt","log_dir":"/shared/logs"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.SafetyFactor != 1.5 || c.MinMinutes != 15 || c.Poll() != 5*time.Second || c.Launchers[0].Slurm.JobName != "brightrun-agent" {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"launchers":[{"name":"Bad Name","type":"slurm"}]}`, `launchers[0].name: "Bad Name"`},
		{`{"launchers":[{"name":"a","type":"nomad","max_agents":1,"max_hours":1,"gpu_types":{"CPU":{}}}]}`, `launchers[0].type: "nomad" is not one of slurm, kubernetes`},
		{`{"launchers":[{"name":"a","type":"slurm","max_agents":1,"max_hours":1,"gpu_types":{"CPU":{}},"slurm":{"trainer":"t","log_dir":"rel"}}]}`, "log_dir: give an absolute directory"},
		{`{"launchers":[{"name":"a","type":"kubernetes","max_agents":0,"max_hours":1,"gpu_types":{"CPU":{}},"kubernetes":{"namespace":"n"}}]}`, "max_agents"},
		{`{"launchers":[{"name":"a","type":"kubernetes","max_agents":1,"max_hours":1,"gpu_types":{"CPU":{}},"kubernetes":{"namespace":"n"}}]}`, "namespace and image are required"},
		{`{"safety_factor":0.5}`, "safety_factor: 0.5 must be 1 or more"},
		{`{"launcher":[]}`, `unknown field "launcher"`},
		{`{"launchers":[{"name":"a","type":"slurm","max_agents":1,"max_hours":1,"gpu_types":{"CPU":{}},"slurm":{"trainer":"t","log_dir":"/l"},"server_url":"ftp://x"}]}`, "server_url"},
	} {
		if _, err := ParseConfig([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.body, tc.want, err)
		}
	}
	err = c.CheckGPUTypes(func(g string) bool { return g == "A100-80GB" })
	if err == nil || !strings.Contains(err.Error(), `"H100-80GB" is not a gpu_type of the catalog`) {
		t.Fatalf("unknown gpu type: %v", err)
	}
}

func TestTimeLimitFromTheEstimate(t *testing.T) {
	c := FileConfig{SafetyFactor: 1.5, MinMinutes: 15}
	l := Settings{MaxHours: 4}
	job := func(est *estimate.Result) store.ExecJob { return store.ExecJob{Job: store.Job{Estimate: est}} }
	hours := func(h float64) *estimate.Result { return &estimate.Result{EstimatedDurationHours: h} }
	for _, tc := range []struct {
		est  *estimate.Result
		want time.Duration
		ok   bool
	}{
		{hours(2), 3 * time.Hour, true},
		{hours(0.01), 15 * time.Minute, true}, // the floor covers start-up
		{hours(3), 270 * time.Minute, false},  // 4.5 h > 4 h
		{hours(0), 4 * time.Hour, true},       // no duration: the launcher's cap
		{nil, 4 * time.Hour, true},            // no estimate: the launcher's cap
	} {
		d, ok := c.TimeLimit(job(tc.est), l)
		if d != tc.want || ok != tc.ok {
			t.Errorf("%+v: got %s %v, want %s %v", tc.est, d, ok, tc.want, tc.ok)
		}
	}
}
