package e2e

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/synth"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// peakRSS reads the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("VmHWM not reported")
	return 0
}

// TestDatasetUpload200MBFlatMemory uploads a generated 200 MB v4 JSONL
// through the signed URL and validates it; the whole process (server, test
// client and generator together) must stay under 150 MB peak RSS.
func TestDatasetUpload200MBFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB upload skipped in -short mode")
	}
	s := testserver.Start(t, testdb.Engines()[0], testserver.Options{})
	c := s.SignUp(t, "big@example.com")
	const size = 200 << 20
	opts := synth.Options{Format: synth.V4JSONL, TargetBytes: size, Seed: 7}
	// Measure the exact size first (streamed, nothing kept).
	sum, err := synth.Write(discard{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Logf("cannot reset the peak RSS (%v); measuring the peak since process start", err)
	}
	up := createDataset(t, c, "big", "big.jsonl", sum.Bytes)
	rc := synth.Reader(opts)
	defer rc.Close()
	if res := putFile(t, up, rc, sum.Bytes); res.StatusCode != 200 {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	c.MustJSON("POST", "/api/datasets/"+up.Dataset.ID+"/confirm", nil, 200, nil)
	d := waitDataset(t, c, up.Dataset.ID)
	peak := peakRSS(t)
	t.Logf("uploaded and validated %d bytes (%d pairs); peak RSS %.1f MB", sum.Bytes, sum.TrainablePairs, float64(peak)/(1<<20))
	if d.Status != "ready" || d.Statistics.TrainablePairs != sum.TrainablePairs {
		t.Fatalf("dataset: %s, %d trainable (want %d)", d.Status, d.Statistics.TrainablePairs, sum.TrainablePairs)
	}
	if peak > 150<<20 {
		t.Fatalf("peak RSS %.1f MB exceeds 150 MB", float64(peak)/(1<<20))
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
