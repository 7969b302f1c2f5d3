package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/config"
)

// TestLaunchersValidatedAtStartUp: a bad launchers file stops start-up with
// a message naming the variable and the field.
func TestLaunchersValidatedAtStartUp(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"launchers":[{"name":"hpc","type":"slurm","max_agents":1,"max_hours":1,"gpu_types":{"B300-SUPER":{}},"slurm":{"trainer":"/t","log_dir":"/l"}}]}`,
			`"B300-SUPER" is not a gpu_type of the catalog`},
		{`{"launchers":[{"name":"hpc","type":"slurm","max_agents":1,"max_hours":1,"gpu_types":{"CPU":{}}}]}`, "launchers[0].slurm.trainer"},
		{`{"launchers":[{"name":"k","type":"kubernetes","max_agents":1,"max_hours":1,"gpu_types":{"CPU":{"memory":"lots"}},"kubernetes":{"namespace":"n","image":"i"}}]}`,
			`gpu_types["CPU"].memory: "lots" is not a Kubernetes quantity`},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "launchers.json")
		if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"BRIGHTRUN_DATA_DIR": dir, "BRIGHTRUN_LOCAL_AGENT": "false", "BRIGHTRUN_LAUNCHERS": path}
		c, _, err := config.Load("test", nil, func(k string) string { return env[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(context.Background(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			a.Close()
			t.Fatalf("%s: start-up must fail", tc.body)
		}
		if !strings.Contains(err.Error(), "BRIGHTRUN_LAUNCHERS") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming BRIGHTRUN_LAUNCHERS and %q, got %v", tc.want, err)
		}
	}
}
