package launchers_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/launchers"
	k8s "github.com/brightrun/brightrun/internal/launchers/kubernetes"
	"github.com/brightrun/brightrun/internal/launchers/slurm"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/training/estimate"
	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// These tests run the reconciler against a real store and a real Slurm
// launcher whose commands are absent (BinDir points at an empty
// directory), so every sbatch fails for real; the paths that never reach
// the engine are checked by its rows and event lines. The real cluster runs
// in e2e/launch_slurm_test.go.

type bundle struct {
	svc  *launchers.Service
	st   store.Store
	now  time.Time
	user store.User
	ds   store.Dataset
}

func setup(t *testing.T, maxHours float64) *bundle {
	st := testdb.SQLite(t)
	b := &bundle{st: st, now: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	set := launchers.Settings{Name: "hpc", Type: "slurm", MaxAgents: 1, MaxHours: maxHours, GPUTypes: map[string]launchers.GPUSettings{"H100-80GB": {}},
		Slurm: &launchers.SlurmSettings{BinDir: t.TempDir(), Trainer: "/opt/brightrun-trainer", LogDir: "/shared/logs", JobName: "brightrun-agent"}}
	cfg := launchers.FileConfig{SafetyFactor: 1.5, MinMinutes: 15, PollSeconds: 1, RetryAfterSeconds: 60, Launchers: []launchers.Settings{set}}
	b.svc = &launchers.Service{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return b.now }, Config: cfg,
		Launchers: map[string]launchers.Launcher{"hpc": slurm.New(set)}, PublicURL: "http://brightrun.test"}
	b.user = storetest.NewUser(t, st, "launch-svc@example.com")
	b.ds = storetest.NewDataset(t, st, b.user.ID, "d")
	return b
}

func (b *bundle) tick(t *testing.T) {
	t.Helper()
	if err := b.svc.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) launches(t *testing.T, jobID string) []store.Launch {
	t.Helper()
	l, err := b.st.LaunchList(store.AsSystem(context.Background()), store.LaunchListParams{JobID: jobID})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (b *bundle) events(t *testing.T, jobID string) string {
	t.Helper()
	evs, err := b.st.JobEventsList(store.WithUser(context.Background(), b.user.ID), b.user.ID, jobID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range evs {
		lines = append(lines, e.Message)
	}
	return strings.Join(lines, "\n")
}

func TestFailedSubmitBacksOffThenGivesUp(t *testing.T) {
	b := setup(t, 24)
	j := storetest.NewJob(t, b.st, b.user.ID, b.ds.ID, "H100-80GB")
	b.tick(t)
	ls := b.launches(t, j.ID)
	if len(ls) != 1 || ls[0].State != store.LaunchEnded || !strings.HasPrefix(ls[0].EndReason, "submit failed: sbatch") {
		t.Fatalf("a failed sbatch ends the launch: %+v", ls)
	}
	ev := b.events(t, j.ID)
	if !strings.Contains(ev, "launching one on hpc (slurm)") || !strings.Contains(ev, "launching an agent on hpc failed") {
		t.Fatalf("events:\n%s", ev)
	}
	// Within retry_after_seconds: no new launch.
	b.now = b.now.Add(30 * time.Second)
	b.tick(t)
	if n := len(b.launches(t, j.ID)); n != 1 {
		t.Fatalf("backoff: %d launches", n)
	}
	// After it, two more tries; then the reconciler stops and says why.
	for i := 0; i < 4; i++ {
		b.now = b.now.Add(61 * time.Second)
		b.tick(t)
	}
	if n := len(b.launches(t, j.ID)); n != launchers.MaxUnclaimedLaunches {
		t.Fatalf("want %d launches before giving up, got %d", launchers.MaxUnclaimedLaunches, n)
	}
	if ev := b.events(t, j.ID); strings.Count(ev, "not launching another agent: 3 launched agents ended before claiming") != 1 {
		t.Fatalf("the give-up line is written once:\n%s", ev)
	}
	// The one-job agents of the failed launches are revoked.
	if online, err := b.st.AgentsOnline(store.AsSystem(context.Background()), time.Time{}); err != nil || len(online) != 0 {
		t.Fatalf("agents: %v %+v", err, online)
	}
}

func TestNoLaunchWhenAnIdleCapableAgentIsOnline(t *testing.T) {
	b := setup(t, 24)
	sys := store.AsSystem(context.Background())
	j := storetest.NewJob(t, b.st, b.user.ID, b.ds.ID, "H100-80GB")
	small, _ := b.st.AgentCreate(sys, "a100-box", "h1", b.now)
	_ = b.st.AgentSeen(sys, small.ID, storetest.AgentGPUs("A100-80GB", 8), "v", "h", b.now)
	b.tick(t)
	if n := len(b.launches(t, j.ID)); n != 1 {
		t.Fatalf("an agent of another GPU type does not count: %d launches", n)
	}
	b = setup(t, 24) // a fresh store: the first job would take the idle agent below
	sys = store.AsSystem(context.Background())
	j2 := storetest.NewJob(t, b.st, b.user.ID, b.ds.ID, "H100-80GB")
	ok, _ := b.st.AgentCreate(sys, "h100-box", "h2", b.now)
	_ = b.st.AgentSeen(sys, ok.ID, storetest.AgentGPUs("H100-80GB", 1), "v", "h", b.now)
	b.tick(t)
	if n := len(b.launches(t, j2.ID)); n != 0 {
		t.Fatalf("an idle H100 agent is online: want no launch, got %d", n)
	}
	// Seen too long ago: no longer online, so the job gets a launch.
	b.now = b.now.Add(5 * time.Minute)
	b.tick(t)
	if n := len(b.launches(t, j2.ID)); n != 1 {
		t.Fatalf("the agent went silent: want a launch, got %d", n)
	}
}

func TestEstimateAboveTheLimitIsNotLaunched(t *testing.T) {
	b := setup(t, 1)
	j, err := b.st.JobCreate(store.WithUser(context.Background(), b.user.ID), store.JobCreateParams{At: b.now, ID: uuid.NewString(), UserID: b.user.ID,
		DatasetID: b.ds.ID, PresetID: "balanced", GPUConfig: jobdoc.GPUConfig{GPUType: "H100-80GB", NumGPUs: 1},
		Estimate: &estimate.Result{EstimatedDurationHours: 0.8}, TotalEpochs: 1, TotalSteps: 10, EstimatedCompletionAt: b.now, BaseModel: "m", GPUType: "H100-80GB", NumGPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.tick(t)
	b.tick(t)
	if n := len(b.launches(t, j.ID)); n != 0 {
		t.Fatalf("over max_hours: want no launch, got %d", n)
	}
	if ev := b.events(t, j.ID); strings.Count(ev, "the estimate × 1.5 needs 1h12m0s, above its 1 h limit per job") != 1 {
		t.Fatalf("the reason is written once:\n%s", ev)
	}
}

func TestSlurmScriptKeepsTheTokenOffTheCommandLine(t *testing.T) {
	set := launchers.Settings{Name: "hpc", Type: "slurm", GPUTypes: map[string]launchers.GPUSettings{"H100-80GB": {Partition: "gpu", Account: "ml", Gres: "gpu:h100"}},
		Slurm: &launchers.SlurmSettings{Trainer: "/opt/bt", LogDir: "/shared/logs", JobName: "brightrun-agent", WorkDir: "/scratch", Env: map[string]string{"HF_HOME": "/shared/hf"}}}
	l := slurm.New(set)
	spec := launchers.Spec{LaunchID: "L1", JobID: "J1", Attempt: 2, AgentName: "launch-hpc-J1-a2", Token: "bra_secret'x", ServerURL: "https://br.example",
		GPUType: "H100-80GB", GPUCount: 4, TimeLimit: 90 * time.Minute}
	args := strings.Join(l.Args(spec), " ")
	for _, want := range []string{"--gres=gpu:h100:4", "--partition=gpu", "--account=ml", "--time=90", "--export=NONE", "--output=" + filepath.Join("/shared/logs", "brightrun-%j.out")} {
		if !strings.Contains(args, want) {
			t.Errorf("sbatch args lack %s: %s", want, args)
		}
	}
	if strings.Contains(args, "bra_") {
		t.Fatalf("the token is on the command line: %s", args)
	}
	script := l.Script(spec)
	for _, want := range []string{`BRIGHTRUN_AGENT_TOKEN='bra_secret'\''x'`, "export HF_HOME='/shared/hf'", "'--exit-after-job'", "'--gpu-count' '4'", "'/scratch/L1'"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %s:\n%s", want, script)
		}
	}
	cpu := strings.Join(l.Args(launchers.Spec{GPUType: "CPU", GPUCount: 1, TimeLimit: time.Hour}), " ")
	if strings.Contains(cpu, "--gres") {
		t.Fatalf("a CPU agent asks for no GPU: %s", cpu)
	}
}

// TestKubernetesLaunchAndCancel drives the reconciler with the Kubernetes
// launcher on client-go's fake clientset (no cluster can run here): a
// queued GPU job gets a Job; cancelling the queued job deletes it.
func TestKubernetesLaunchAndCancel(t *testing.T) {
	b := setup(t, 24)
	set := launchers.Settings{Name: "k8s", Type: "kubernetes", MaxAgents: 2, MaxHours: 24, GPUTypes: map[string]launchers.GPUSettings{"H100-80GB": {}},
		Kubernetes: &launchers.KubernetesSettings{Namespace: "agents", Image: "trainer:test", TTLSecondsAfterFinished: 60}}
	cs := fake.NewClientset()
	b.svc.Config.Launchers = []launchers.Settings{set}
	b.svc.Launchers = map[string]launchers.Launcher{"k8s": k8s.New(set, cs)}
	j := storetest.NewJob(t, b.st, b.user.ID, b.ds.ID, "H100-80GB")
	b.tick(t)
	ls := b.launches(t, j.ID)
	if len(ls) != 1 || ls[0].State != store.LaunchSubmitted || ls[0].ExternalID != k8s.Name(ls[0].ID) || ls[0].Kind != "kubernetes" {
		t.Fatalf("launch: %+v", ls)
	}
	ctx := context.Background()
	if _, err := cs.BatchV1().Jobs("agents").Get(ctx, ls[0].ExternalID, metav1.GetOptions{}); err != nil {
		t.Fatalf("the Job must exist: %v", err)
	}
	js := &jobs.Service{Store: b.st, Now: func() time.Time { return b.now }}
	if _, err := js.Cancel(store.WithUser(ctx, b.user.ID), b.user.ID, j.ID); err != nil {
		t.Fatal(err)
	}
	b.tick(t)
	ls = b.launches(t, j.ID)
	if ls[0].State != store.LaunchEnded || ls[0].EndReason != "the job cancelled" {
		t.Fatalf("launch after cancel: %+v", ls[0])
	}
	if _, err := cs.BatchV1().Jobs("agents").Get(ctx, ls[0].ExternalID, metav1.GetOptions{}); err == nil {
		t.Fatal("the Job must be deleted on cancel")
	}
	if ev := b.events(t, j.ID); !strings.Contains(ev, "launched an agent on k8s: Kubernetes Job "+ls[0].ExternalID+"; logs: kubectl -n agents logs job/") {
		t.Fatalf("events:\n%s", ev)
	}
}

// TestClaimRequeueRelaunch: the launched agent's claim is recorded with its
// launch wait; when its attempt is requeued (lease lost), its Job is
// deleted and the next attempt gets a new launch. Kubernetes at the fake
// clientset boundary; the store and the jobs lifecycle are real.
func TestClaimRequeueRelaunch(t *testing.T) {
	b := setup(t, 24)
	set := launchers.Settings{Name: "k8s", Type: "kubernetes", MaxAgents: 2, MaxHours: 24, GPUTypes: map[string]launchers.GPUSettings{"H100-80GB": {}},
		Kubernetes: &launchers.KubernetesSettings{Namespace: "agents", Image: "trainer:test", TTLSecondsAfterFinished: 60}}
	cs := fake.NewClientset()
	b.svc.Config.Launchers = []launchers.Settings{set}
	b.svc.Launchers = map[string]launchers.Launcher{"k8s": k8s.New(set, cs)}
	ctx := context.Background()
	js := &jobs.Service{Store: b.st, Now: func() time.Time { return b.now }}
	j := storetest.NewJob(t, b.st, b.user.ID, b.ds.ID, "H100-80GB")
	b.tick(t)
	first := b.launches(t, j.ID)[0]
	// 40 s later the launched agent claims with its one-job identity.
	b.now = b.now.Add(40 * time.Second)
	if _, ok, err := js.Claim(ctx, jobs.ClaimRequest{AgentID: first.AgentID, JobID: j.ID, GPUType: "H100-80GB", GPUCount: 1,
		TokenHash: func(string, int) string { return "job-token-hash" }, Lease: time.Minute}); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	b.tick(t)
	l := b.launches(t, j.ID)[0]
	if l.State != store.LaunchClaimed || l.ClaimedAt == nil || !l.ClaimedAt.Equal(b.now) {
		t.Fatalf("claimed launch: %+v", l)
	}
	if v := launchers.NewView(l, b.now.Add(time.Hour)); v.WaitSeconds != 40 || v.Billed {
		t.Fatalf("the launch wait is launch → claim: %+v", v)
	}
	if ev := b.events(t, j.ID); !strings.Contains(ev, "claimed the job after a launch wait of 40s") || !strings.Contains(ev, "(not billed: billing starts at the claim)") {
		t.Fatalf("events:\n%s", ev)
	}
	e, _ := b.st.JobExec(store.AsSystem(ctx), j.ID)
	b.now = b.now.Add(2 * time.Minute)
	if err := js.Requeue(ctx, e, "agent_lost", "lease expired"); err != nil {
		t.Fatal(err)
	}
	b.tick(t)
	ls := b.launches(t, j.ID)
	if len(ls) != 2 || ls[1].ID != first.ID || ls[1].State != store.LaunchEnded || !strings.HasPrefix(ls[1].EndReason, "the attempt ended and the job was requeued") {
		t.Fatalf("after the requeue: %+v", ls)
	}
	if _, err := cs.BatchV1().Jobs("agents").Get(ctx, first.ExternalID, metav1.GetOptions{}); err == nil {
		t.Fatal("the first attempt's Job must be deleted")
	}
	if ls[0].Attempt != 2 || ls[0].State != store.LaunchSubmitted {
		t.Fatalf("the next attempt's launch: %+v", ls[0])
	}
}
