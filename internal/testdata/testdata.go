// Package testdata locates the real datasets for tests. They stay outside
// the repository, in shared/data beside the checkout; BRIGHTRUN_DATASETS_DIR
// overrides the location. Tests skip with a clear message when the folder is
// absent, unless BRIGHTRUN_REQUIRE_DATASETS=1 (CI), which makes them fail.
package testdata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Real dataset file names.
const (
	EQ12JSON  = "eq-12-conversations.v4.json"
	EQ12JSONL = "eq-12-conversations.v4.jsonl"
	EQ18JSON  = "eq-18-conversations.v4.json"
)

// Dir returns the real datasets folder.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BRIGHTRUN_DATASETS_DIR")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(dir, EQ12JSON)); err != nil {
		if os.Getenv("BRIGHTRUN_REQUIRE_DATASETS") == "1" {
			t.Fatalf("real datasets not found in %s but BRIGHTRUN_REQUIRE_DATASETS=1: %v", dir, err)
		}
		t.Skipf("real datasets not found in %s (set BRIGHTRUN_DATASETS_DIR): %v", dir, err)
	}
	return dir
}

// Path returns the path of one real dataset file.
func Path(t testing.TB, name string) string { return filepath.Join(Dir(t), name) }
