package kubernetes_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/launchers"
	"github.com/brightrun/brightrun/internal/launchers/kubernetes"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// No Kubernetes cluster can run on this machine, so these tests use
// client-go's fake clientset at the API-server boundary: they check the
// objects the launcher creates, deletes and reads, not a scheduler's
// behaviour. The generated manifests are kept as golden YAML files
// (testdata/*.yaml) that a reviewer can check against a real cluster with
// `kubectl apply --dry-run=server -f internal/launchers/kubernetes/testdata/`
// (after `kubectl create namespace brightrun-agents`).

var update = flag.Bool("update", false, "rewrite the golden manifests")

func settings() launchers.Settings {
	return launchers.Settings{Name: "k8s", Type: "kubernetes", MaxAgents: 4, MaxHours: 24,
		GPUTypes: map[string]launchers.GPUSettings{
			"H100-80GB": {NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, CPU: "16", Memory: "200Gi",
				Tolerations: []launchers.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}},
			"CPU": {CPU: "2", Memory: "8Gi"},
		},
		Kubernetes: &launchers.KubernetesSettings{Namespace: "brightrun-agents", Image: "ghcr.io/example/brightrun-trainer:0.1.0",
			TTLSecondsAfterFinished: 3600, ImagePullSecret: "registry", Env: map[string]string{"HF_HOME": "/srv/brightrun/hf"},
			LogsURL: "https://grafana.example.com/explore?query={namespace}/{name}"}}
}

func spec(gpu string, n int) launchers.Spec {
	return launchers.Spec{LaunchID: "6f1c2d3e-0000-4000-8000-00000000abcd", JobID: "0b7e8f90-1111-4222-8333-444455556666", Attempt: 1,
		AgentName: "launch-k8s-0b7e8f90-a1", Token: "bra_EXAMPLE_ONE_JOB_TOKEN", ServerURL: "https://brightrun.example.com",
		GPUType: gpu, GPUCount: n, TimeLimit: 3 * time.Hour}
}

func golden(t *testing.T, name string, obj any) {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/launchers/kubernetes -update once)", err)
	}
	if string(want) != string(b) {
		t.Fatalf("%s differs from the generated manifest (rerun with -update if intended):\n%s", path, b)
	}
}

func TestSubmitCreatesJobAndOwnedSecret(t *testing.T) {
	cs := fake.NewClientset()
	l := kubernetes.New(settings(), cs)
	ctx := context.Background()
	h, err := l.Submit(ctx, spec("H100-80GB", 4))
	if err != nil {
		t.Fatal(err)
	}
	name := kubernetes.Name("6f1c2d3e-0000-4000-8000-00000000abcd")
	if h.ExternalID != name || h.LogsURL != "https://grafana.example.com/explore?query=brightrun-agents/"+name {
		t.Fatalf("handle: %+v", h)
	}
	job, err := cs.BatchV1().Jobs("brightrun-agents").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	if q := c.Resources.Limits["nvidia.com/gpu"]; q.Value() != 4 {
		t.Fatalf("nvidia.com/gpu limit: %v", c.Resources.Limits)
	}
	if pod.NodeSelector["nvidia.com/gpu.product"] != "NVIDIA-H100-80GB-HBM3" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Fatalf("placement: %+v %+v", pod.NodeSelector, pod.Tolerations)
	}
	if *job.Spec.BackoffLimit != 0 || *job.Spec.ActiveDeadlineSeconds != 3*3600 || *job.Spec.TTLSecondsAfterFinished != 3600 {
		t.Fatalf("job spec: %+v", job.Spec)
	}
	if strings.Contains(strings.Join(c.Args, " "), "bra_") || c.Env[0].ValueFrom.SecretKeyRef.Name != name {
		t.Fatalf("the token must come from the Secret, not the command line: %v %+v", c.Args, c.Env[0])
	}
	sec, err := cs.CoreV1().Secrets("brightrun-agents").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.StringData["agent-token"] != "bra_EXAMPLE_ONE_JOB_TOKEN" || len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "Job" || sec.OwnerReferences[0].Name != name {
		t.Fatalf("secret: %+v", sec)
	}
	secret, manifest := l.Manifests(spec("H100-80GB", 4))
	golden(t, "job-h100x4.yaml", manifest)
	golden(t, "secret.yaml", secret)
	_, cpu := l.Manifests(spec("CPU", 1))
	if _, ok := cpu.Spec.Template.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]; ok {
		t.Fatal("a CPU agent asks for no GPU")
	}
	golden(t, "job-cpu.yaml", cpu)
}

func TestStatesAndStop(t *testing.T) {
	cs := fake.NewClientset()
	l := kubernetes.New(settings(), cs)
	ctx := context.Background()
	h, err := l.Submit(ctx, spec("CPU", 1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.States(ctx, []string{h.ExternalID, "brightrun-gone"})
	if err != nil || st[h.ExternalID] != launchers.StatePending || st["brightrun-gone"] != launchers.StateDone {
		t.Fatalf("states: %v %v", st, err)
	}
	// The Job controller would set these; the fake clientset has none, so the test does.
	job, _ := cs.BatchV1().Jobs("brightrun-agents").Get(ctx, h.ExternalID, metav1.GetOptions{})
	one := int32(1)
	job.Status.Ready = &one
	if _, err := cs.BatchV1().Jobs("brightrun-agents").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := l.States(ctx, []string{h.ExternalID}); st[h.ExternalID] != launchers.StateRunning {
		t.Fatalf("ready pod: %v", st)
	}
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded"}}
	if _, err := cs.BatchV1().Jobs("brightrun-agents").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := l.States(ctx, []string{h.ExternalID}); st[h.ExternalID] != launchers.StateDone {
		t.Fatalf("failed job: %v", st)
	}
	if err := l.Stop(ctx, h.ExternalID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.BatchV1().Jobs("brightrun-agents").Get(ctx, h.ExternalID, metav1.GetOptions{}); err == nil {
		t.Fatal("the Job must be deleted")
	}
	if err := l.Stop(ctx, h.ExternalID); err != nil {
		t.Fatalf("stopping a Job already gone: %v", err)
	}
}

func TestSubmitFailsCleanlyWhenTheJobExists(t *testing.T) {
	cs := fake.NewClientset()
	l := kubernetes.New(settings(), cs)
	if _, err := l.Submit(context.Background(), spec("CPU", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Submit(context.Background(), spec("CPU", 1)); err == nil || !strings.Contains(err.Error(), "create Job brightrun-agents/") {
		t.Fatalf("a second Job with the same name: %v", err)
	}
}
