// Package kubernetes launches ephemeral trainer agents as batch/v1 Jobs,
// one per job attempt, with client-go. Each Job runs the trainer image with
// the one-job agent token from its own Secret (owned by the Job, so
// Kubernetes deletes it with the Job), requests nvidia.com/gpu, lands on
// the GPU type's nodes through its node selector and tolerations, and is
// removed ttlSecondsAfterFinished after it ends.
package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/launchers"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels on every object the launcher creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"
	LabelJob       = "brightrun.io/job-id"
	LabelLaunch    = "brightrun.io/launch-id"
	LabelAttempt   = "brightrun.io/attempt"
	managedBy      = "brightrun"
	tokenKey       = "agent-token"
	gpuResource    = corev1.ResourceName("nvidia.com/gpu")
)

// Launcher is a Kubernetes launcher.
type Launcher struct {
	client kubernetes.Interface
	set    launchers.KubernetesSettings
	gpus   map[string]launchers.GPUSettings
}

var _ launchers.Launcher = (*Launcher)(nil)

// New builds a launcher on client (NewClient, or a fake clientset in tests).
func New(s launchers.Settings, client kubernetes.Interface) *Launcher {
	return &Launcher{client: client, set: *s.Kubernetes, gpus: s.GPUTypes}
}

// NewClient connects with the kubeconfig file, or in-cluster credentials
// when it is empty.
func NewClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes credentials: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// Kind is "kubernetes".
func (l *Launcher) Kind() string { return "kubernetes" }

// Name is the Job's (and its Secret's) name for a launch.
func Name(launchID string) string { return "brightrun-" + strings.ToLower(launchID) }

func (l *Launcher) labels(spec launchers.Spec) map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelName: "brightrun-agent", LabelJob: spec.JobID, LabelLaunch: spec.LaunchID,
		LabelAttempt: strconv.Itoa(spec.Attempt)}
}

// Manifests are the Secret and the Job for spec (the Secret's owner
// reference to the Job is added once the Job exists and has a UID).
func (l *Launcher) Manifests(spec launchers.Spec) (*corev1.Secret, *batchv1.Job) {
	name := Name(spec.LaunchID)
	meta := metav1.ObjectMeta{Name: name, Namespace: l.set.Namespace, Labels: l.labels(spec)}
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta, Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{tokenKey: spec.Token}}
	g := l.gpus[spec.GPUType]
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	if !strings.EqualFold(spec.GPUType, "CPU") {
		n := resource.MustParse(strconv.Itoa(spec.GPUCount))
		res.Requests[gpuResource], res.Limits[gpuResource] = n, n
	}
	if g.CPU != "" {
		res.Requests[corev1.ResourceCPU] = resource.MustParse(g.CPU) // validated at start-up
	}
	if g.Memory != "" {
		res.Requests[corev1.ResourceMemory] = resource.MustParse(g.Memory)
		res.Limits[corev1.ResourceMemory] = resource.MustParse(g.Memory)
	}
	env := []corev1.EnvVar{{Name: "BRIGHTRUN_AGENT_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: tokenKey}}}, {Name: "PYTHONUNBUFFERED", Value: "1"}}
	for _, k := range sortedKeys(l.set.Env) {
		env = append(env, corev1.EnvVar{Name: k, Value: l.set.Env[k]})
	}
	var tolerations []corev1.Toleration
	for _, t := range g.Tolerations {
		op := corev1.TolerationOpEqual
		if t.Operator == "Exists" {
			op = corev1.TolerationOpExists
		}
		tolerations = append(tolerations, corev1.Toleration{Key: t.Key, Operator: op, Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	var pull []corev1.LocalObjectReference
	if l.set.ImagePullSecret != "" {
		pull = []corev1.LocalObjectReference{{Name: l.set.ImagePullSecret}}
	}
	no, yes, uid := false, true, int64(1000)
	zero := int32(0)
	deadline := int64(spec.TimeLimit.Seconds())
	ttl := l.set.TTLSecondsAfterFinished
	job := &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit:            &zero, // BrightRun retries the job (from its checkpoint), not Kubernetes
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l.labels(spec)}, Spec: corev1.PodSpec{
				RestartPolicy:                corev1.RestartPolicyNever,
				ServiceAccountName:           l.set.ServiceAccount,
				AutomountServiceAccountToken: &no,
				NodeSelector:                 g.NodeSelector,
				Tolerations:                  tolerations,
				ImagePullSecrets:             pull,
				SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, FSGroup: &uid},
				Containers: []corev1.Container{{
					Name: "agent", Image: l.set.Image,
					Args: []string{"agent", "--server", spec.ServerURL, "--gpu-type", spec.GPUType, "--gpu-count", strconv.Itoa(spec.GPUCount),
						"--name", spec.AgentName, "--exit-after-job", "--idle-exit-seconds", "600", "--work-dir", "/srv/brightrun"},
					Env:          env,
					Resources:    res,
					VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/srv/brightrun"}, {Name: "shm", MountPath: "/dev/shm"}},
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no,
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				}},
				Volumes: []corev1.Volume{
					{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "shm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				},
			}},
		}}
	return secret, job
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// Submit creates the Job, then its Secret owned by the Job (the pod waits
// for the Secret; deleting the Job deletes the Secret).
func (l *Launcher) Submit(ctx context.Context, spec launchers.Spec) (launchers.Handle, error) {
	secret, job := l.Manifests(spec)
	created, err := l.client.BatchV1().Jobs(l.set.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return launchers.Handle{}, fmt.Errorf("create Job %s/%s: %w", l.set.Namespace, job.Name, err)
	}
	secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: created.Name, UID: created.UID}}
	if _, err := l.client.CoreV1().Secrets(l.set.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		_ = l.Stop(ctx, created.Name)
		return launchers.Handle{}, fmt.Errorf("create Secret %s/%s: %w", l.set.Namespace, secret.Name, err)
	}
	return launchers.Handle{ExternalID: created.Name, LogsURL: l.logsURL(created.Name)}, nil
}

func (l *Launcher) logsURL(name string) string {
	if l.set.LogsURL == "" {
		return fmt.Sprintf("kubectl -n %s logs job/%s", l.set.Namespace, name)
	}
	return strings.NewReplacer("{namespace}", l.set.Namespace, "{name}", name).Replace(l.set.LogsURL)
}

// Stop deletes the Job and its pods (and, through the owner reference, its
// Secret). A Job already gone is not an error.
func (l *Launcher) Stop(ctx context.Context, name string) error {
	bg := metav1.DeletePropagationBackground
	err := l.client.BatchV1().Jobs(l.set.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// States lists the launcher's Jobs once; a Job no longer there is done.
func (l *Launcher) States(ctx context.Context, names []string) (map[string]launchers.State, error) {
	list, err := l.client.BatchV1().Jobs(l.set.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + managedBy})
	if err != nil {
		return nil, err
	}
	seen := map[string]launchers.State{}
	for _, j := range list.Items {
		seen[j.Name] = stateOf(j)
	}
	out := make(map[string]launchers.State, len(names))
	for _, n := range names {
		if s, ok := seen[n]; ok {
			out[n] = s
		} else {
			out[n] = launchers.StateDone
		}
	}
	return out, nil
}

func stateOf(j batchv1.Job) launchers.State {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return launchers.StateDone
		}
	}
	switch {
	case j.Status.Succeeded > 0 || j.Status.Failed > 0:
		return launchers.StateDone
	case j.Status.Ready != nil && *j.Status.Ready > 0:
		return launchers.StateRunning
	}
	return launchers.StatePending
}

// Check validates the settings only Kubernetes can judge (resource quantities).
func Check(s launchers.Settings) error {
	for gpu, g := range s.GPUTypes {
		for field, v := range map[string]string{"cpu": g.CPU, "memory": g.Memory} {
			if v == "" {
				continue
			}
			if _, err := resource.ParseQuantity(v); err != nil {
				return fmt.Errorf("BRIGHTRUN_LAUNCHERS launcher %s: gpu_types[%q].%s: %q is not a Kubernetes quantity (e.g. \"8\", \"64Gi\")", s.Name, gpu, field, v)
			}
		}
	}
	return nil
}
