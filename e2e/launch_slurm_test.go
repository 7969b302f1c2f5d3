package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/launchers"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testdata"
	"github.com/brightrun/brightrun/internal/testserver"
)

// slurmCluster starts a real single-node Slurm cluster (munged, slurmctld,
// slurmd from Debian's munge and slurm-wlm) with scripts/slurm-test-cluster.sh
// and points this process's Slurm commands at it. Without the binaries (or
// root, which slurmd needs to start jobs) the test skips, unless
// BRIGHTRUN_REQUIRE_SLURM=1 (CI).
func slurmCluster(t *testing.T) string {
	t.Helper()
	missing := ""
	for _, b := range []string{"sbatch", "squeue", "scancel", "slurmctld", "slurmd", "munged"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = b + " is not installed (apt-get install -y slurm-wlm munge)"
		}
	}
	if missing == "" && os.Geteuid() != 0 {
		missing = "the single-node test cluster needs root (slurmd starts jobs as their submitter)"
	}
	if missing != "" {
		if os.Getenv("BRIGHTRUN_REQUIRE_SLURM") == "1" {
			t.Fatalf("%s but BRIGHTRUN_REQUIRE_SLURM=1", missing)
		}
		t.Skipf("%s: skipping the real Slurm launcher test", missing)
	}
	dir, err := os.MkdirTemp("", "brightrun-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(repoRoot(), "scripts", "slurm-test-cluster.sh")
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"slurmctld.log", "slurmd.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, "logs", f))
				t.Logf("%s:\n%s", f, lastLines(string(b), 30))
			}
		}
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("stopping the Slurm cluster: %v\n%s", err, out)
		}
		_ = os.RemoveAll(dir)
	})
	out, err := exec.Command(script, "start", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("starting the Slurm cluster: %v\n%s", err, out)
	}
	t.Setenv("SLURM_CONF", filepath.Join(dir, "slurm.conf"))
	return dir
}

// slurmServer is a server with one Slurm launcher for CPU jobs and no
// local agent: only launched agents can run the jobs.
func slurmServer(t *testing.T, te trainerEnv, dir string, extra []string) *testserver.Server {
	return slurmServerMax(t, te, dir, extra, 2)
}

func slurmServerMax(t *testing.T, te trainerEnv, dir string, extra []string, maxAgents int) *testserver.Server {
	t.Helper()
	logs := filepath.Join(dir, "agent-logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	fc := launchers.FileConfig{PollSeconds: 0.3, RetryAfterSeconds: 1, Launchers: []launchers.Settings{{
		Name: "testhpc", Type: "slurm", MaxAgents: maxAgents, MaxHours: 2,
		GPUTypes: map[string]launchers.GPUSettings{"CPU": {Partition: "debug"}},
		Slurm: &launchers.SlurmSettings{Trainer: te.exe, LogDir: logs, WorkDir: filepath.Join(dir, "work"), ExtraArgs: extra,
			Env: map[string]string{
				"PYTHONPATH":           os.Getenv("PYTHONPATH"), // the worktree's trainer (see the helper brief)
				"BRIGHTRUN_MODELS_DIR": te.models, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
			}},
	}}}
	b, _ := json.Marshal(fc)
	path := filepath.Join(dir, "launchers.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ao := agentapi.DefaultOptions
	ao.Lease, ao.Heartbeat, ao.Poll, ao.MaxWait, ao.CheckpointAt = 4*time.Second, time.Second, 200*time.Millisecond, 2*time.Second, 4
	return testserver.Start(t, testdb.Engines()[0], testserver.Options{
		Env: map[string]string{"BRIGHTRUN_CATALOG": te.catalog, "BRIGHTRUN_LAUNCHERS": path}, App: app.Options{AgentOptions: &ao}})
}

type launchList struct {
	Launches []launchers.View `json:"launches"`
}

func launchesOf(t *testing.T, c *testserver.Client, jobID string) []launchers.View {
	var l launchList
	c.MustJSON("GET", "/api/launches?job_id="+jobID, nil, 200, &l)
	return l.Launches
}

// waitLaunches polls the user's view of a job's launches until done holds.
func waitLaunches(t *testing.T, c *testserver.Client, jobID string, timeout time.Duration, done func([]launchers.View) bool) []launchers.View {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l := launchesOf(t, c, jobID)
		if done(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("launches of job %s: timed out: %+v", jobID, l)
		}
		// Real-time dependency: the launch reconciler and Slurm act on their
		// own schedule; poll the launches' state.
		time.Sleep(200 * time.Millisecond)
	}
}

func slurmState(t *testing.T, id string) string {
	out, err := exec.Command("squeue", "--noheader", "--states=all", "--jobs="+id, "--format=%T").CombinedOutput()
	if err != nil {
		t.Fatalf("squeue: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func hasEvent(evs []store.JobEvent, sub string) bool {
	for _, e := range evs {
		if strings.Contains(e.Message, sub) {
			return true
		}
	}
	return false
}

// TestSlurmLaunchEndToEnd: a queued CPU job with no agent online → the
// launcher runs sbatch → the real trainer agent starts as a Slurm job,
// claims the job with its one-job token, trains, completes and exits →
// the launch ends and its token is revoked. The launch wait is in the event
// log and the API and is not billed.
func TestSlurmLaunchEndToEnd(t *testing.T) {
	te := newTrainerEnv(t)
	dir := slurmCluster(t)
	s := slurmServer(t, te, dir, nil)
	c := s.SignUp(t, "slurm@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 1)
	st := waitJob(t, c, id, 8*time.Minute, func(s jobState) bool { return s.Job.Status == "completed" || s.Job.Status == "failed" })
	if st.Job.Status != "completed" {
		t.Fatalf("job: %+v", st.Job)
	}
	ls := waitLaunches(t, c, id, time.Minute, func(l []launchers.View) bool { return len(l) == 1 && l[0].State == store.LaunchEnded })
	l := ls[0]
	if l.Launcher != "testhpc" || l.Kind != "slurm" || l.ExternalID == "" || l.ClaimedAt == nil || l.EndReason != "the job completed" ||
		!strings.HasPrefix(l.LogsURL, "file://"+dir) || l.Billed {
		t.Fatalf("launch: %+v", l)
	}
	t.Logf("launch wait (launch → claim, sbatch + scheduling + agent start-up): %.0f s; Slurm job %s", l.WaitSeconds, l.ExternalID)
	if l.WaitSeconds != l.ClaimedAt.Sub(l.CreatedAt).Round(time.Second).Seconds() {
		t.Fatalf("the launch wait is created → claimed: %+v", l)
	}
	for _, want := range []string{"launching one on testhpc (slurm)", "launched an agent on testhpc: Slurm job " + l.ExternalID + "; logs: file://",
		"claimed the job after a launch wait of", "(Slurm job " + l.ExternalID + ") ended: the job completed"} {
		if !hasEvent(st.Events, want) && !hasEvent(jobEvents(t, s, c, id), want) {
			t.Errorf("event log lacks %q: %+v", want, st.Events)
		}
	}
	// Billing starts at the claim: the billed seconds fit between the claim
	// and the end, so the launch wait (Slurm scheduling, agent start-up) is not in them.
	d := st.CostRecords[0].Details.Compute
	if d == nil {
		t.Fatalf("the compute record has no details: %+v", st.CostRecords[0])
	}
	e, _ := s.App.Store.JobExec(store.AsSystem(context.Background()), id)
	if span := e.CompletedAt.Sub(*l.ClaimedAt).Seconds(); d.Seconds > span+0.2 {
		t.Fatalf("billed %.1f s, but the agent held the job only %.1f s after its claim", d.Seconds, span)
	}
	// The agent's output is where the logs link says; it exited after its one job.
	out, err := os.ReadFile(strings.TrimPrefix(l.LogsURL, "file://"))
	if err != nil || !strings.Contains(string(out), "exit-after-job") {
		t.Fatalf("agent log %s: %v\n%s", l.LogsURL, err, lastLines(string(out), 30))
	}
	if _, err := s.App.Store.AgentsOnline(store.AsSystem(context.Background()), time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitSlurm(t, l.ExternalID, "COMPLETED")
}

// waitSlurm polls squeue until the Slurm job reaches state.
func waitSlurm(t *testing.T, id, state string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for got := slurmState(t, id); got != state; got = slurmState(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("Slurm job %s is %q, want %s", id, got, state)
		}
		// Real-time dependency: slurmctld updates job states on its own schedule.
		time.Sleep(200 * time.Millisecond)
	}
}

func jobEvents(t *testing.T, s *testserver.Server, c *testserver.Client, id string) []store.JobEvent {
	evs, err := s.App.Store.JobEventsList(store.WithUser(context.Background(), c.UserID), c.UserID, id, 500)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestSlurmLaunchCancel: a job cancelled while its launched agent still
// waits in the Slurm queue → the launcher runs scancel → the Slurm job is
// CANCELLED and the launch ends with the job. With max_agents 1, a second
// queued job gets its launch only once the first one's slot is free.
func TestSlurmLaunchCancel(t *testing.T) {
	te := newTrainerEnv(t)
	dir := slurmCluster(t)
	// --begin holds the Slurm job PENDING, so the cancel comes before any claim.
	s := slurmServerMax(t, te, dir, []string{"--begin=now+3600"}, 1)
	c := s.SignUp(t, "slurm-cancel@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 1)
	ls := waitLaunches(t, c, id, time.Minute, func(l []launchers.View) bool { return len(l) == 1 && l[0].State == store.LaunchSubmitted })
	second := createTinyJob(t, c, ds, 1)
	// Wait for two reconciler ticks (it ticks every 0.3 s; the signal is its
	// own store writes): the second job must have no launch while the slot is taken.
	tick := s.App.Launchers.Tick
	for i := 0; i < 2; i++ {
		if err := tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if l := launchesOf(t, c, second); len(l) != 0 {
		t.Fatalf("max_agents 1: the second job must wait for the slot, got %+v", l)
	}
	ext := ls[0].ExternalID
	if got := slurmState(t, ext); got != "PENDING" {
		t.Fatalf("Slurm job %s is %s, want PENDING", ext, got)
	}
	c.MustJSON("POST", "/api/jobs/"+id+"/cancel", nil, 200, nil)
	ls = waitLaunches(t, c, id, time.Minute, func(l []launchers.View) bool { return l[0].State == store.LaunchEnded })
	if ls[0].EndReason != "the job cancelled" || ls[0].ClaimedAt != nil {
		t.Fatalf("launch: %+v", ls[0])
	}
	waitSlurm(t, ext, "CANCELLED")
	if !hasEvent(jobEvents(t, s, c, id), "(Slurm job "+ext+") ended: the job cancelled") {
		t.Fatalf("no teardown event: %+v", jobEvents(t, s, c, id))
	}
	// The slot is free: the second job gets its launch; cancel it too.
	ls = waitLaunches(t, c, second, time.Minute, func(l []launchers.View) bool { return len(l) == 1 && l[0].State == store.LaunchSubmitted })
	c.MustJSON("POST", "/api/jobs/"+second+"/cancel", nil, 200, nil)
	waitLaunches(t, c, second, time.Minute, func(l []launchers.View) bool { return l[0].State == store.LaunchEnded })
	waitSlurm(t, ls[0].ExternalID, "CANCELLED")
}

// TestSlurmLaunchKilled: the launched agent's Slurm job is cancelled from
// outside (scancel, as an operator or a preemption would) mid-training →
// the agent stops without reporting → its lease expires → the job is
// requeued → the launch ends ("lost its lease") → a second agent is
// launched for attempt 2, resumes from the checkpoint and completes.
func TestSlurmLaunchKilled(t *testing.T) {
	te := newTrainerEnv(t)
	dir := slurmCluster(t)
	s := slurmServer(t, te, dir, nil)
	c := s.SignUp(t, "slurm-kill@example.com")
	ds := uploadFile(t, c, "eq12", testdata.Path(t, testdata.EQ12JSONL))
	waitDataset(t, c, ds)
	id := createTinyJob(t, c, ds, 2)
	waitJob(t, c, id, 6*time.Minute, func(js jobState) bool {
		e, err := s.App.Store.JobExec(store.AsSystem(context.Background()), id)
		return err == nil && e.Checkpoint != nil && js.Job.Status == "running"
	})
	first := waitLaunches(t, c, id, time.Minute, func(l []launchers.View) bool { return len(l) == 1 && l[0].State == store.LaunchClaimed })[0]
	if out, err := exec.Command("scancel", first.ExternalID).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	waitSlurm(t, first.ExternalID, "CANCELLED")
	// A shared 2-core machine trains the tiny model slowly: allow time for
	// the lease, a second sbatch and the resumed attempt.
	st := waitJob(t, c, id, 10*time.Minute, func(s jobState) bool { return s.Job.Status == "completed" || s.Job.Status == "failed" })
	if st.Job.Status != "completed" || st.Job.RetryCount != 1 {
		t.Fatalf("job: %+v", st.Job)
	}
	ls := waitLaunches(t, c, id, time.Minute, func(l []launchers.View) bool { return len(l) == 2 && l[0].State == store.LaunchEnded })
	second, old := ls[0], ls[1] // newest first
	if old.ID != first.ID || old.EndReason != "the attempt ended and the job was requeued (lease lost or a retryable failure)" || old.Attempt != 1 {
		t.Fatalf("first launch: %+v", old)
	}
	if second.Attempt != 2 || second.ClaimedAt == nil || second.EndReason != "the job completed" || second.ExternalID == first.ExternalID {
		t.Fatalf("second launch: %+v", second)
	}
	if !hasEvent(jobEvents(t, s, c, id), "resuming") {
		t.Fatalf("attempt 2 did not resume from the checkpoint: %+v", jobEvents(t, s, c, id))
	}
}
