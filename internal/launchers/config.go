package launchers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// FileConfig is the launchers file (BRIGHTRUN_LAUNCHERS). See docs/launchers.md.
type FileConfig struct {
	// SafetyFactor multiplies the job's estimated duration to give the
	// engine's time limit (default 1.5).
	SafetyFactor float64 `json:"safety_factor"`
	// MinMinutes is the shortest time limit asked for, covering the agent's
	// start-up and the model download (default 15).
	MinMinutes float64 `json:"min_minutes"`
	// PollSeconds is how often the reconciler looks at queued jobs and
	// launched agents (default 5).
	PollSeconds float64 `json:"poll_seconds"`
	// RetryAfterSeconds is how long a job waits before another launch after
	// one failed or ended before its agent claimed the job (default 60).
	RetryAfterSeconds float64    `json:"retry_after_seconds"`
	Launchers         []Settings `json:"launchers"`
}

// Settings configure one launcher.
type Settings struct {
	Name string `json:"name"` // shown in events and on the agents page
	Type string `json:"type"` // slurm | kubernetes
	// ServerURL is the URL the launched agents use to reach the server
	// (default: BRIGHTRUN_PUBLIC_URL).
	ServerURL string `json:"server_url"`
	// MaxAgents caps this launcher's agents alive at once.
	MaxAgents int `json:"max_agents"`
	// MaxHours caps one agent's time limit: a job whose estimate × the
	// safety factor exceeds it is not launched (its event log says so).
	MaxHours float64 `json:"max_hours"`
	// GPUTypes maps each catalog gpu_type this launcher serves to where
	// its agents run.
	GPUTypes   map[string]GPUSettings `json:"gpu_types"`
	Slurm      *SlurmSettings         `json:"slurm,omitempty"`
	Kubernetes *KubernetesSettings    `json:"kubernetes,omitempty"`
}

// GPUSettings place one GPU type on the engine.
type GPUSettings struct {
	Partition    string            `json:"partition,omitempty"`     // Slurm --partition
	Account      string            `json:"account,omitempty"`       // Slurm --account
	QOS          string            `json:"qos,omitempty"`           // Slurm --qos
	Gres         string            `json:"gres,omitempty"`          // Slurm gres name (default "gpu"; none for CPU)
	NodeSelector map[string]string `json:"node_selector,omitempty"` // Kubernetes
	Tolerations  []Toleration      `json:"tolerations,omitempty"`   // Kubernetes
	CPU          string            `json:"cpu,omitempty"`           // Kubernetes CPU request, e.g. "8"
	Memory       string            `json:"memory,omitempty"`        // Kubernetes memory request, e.g. "64Gi"
}

// Toleration is a Kubernetes pod toleration.
type Toleration struct {
	Key      string `json:"key"`
	Operator string `json:"operator,omitempty"` // Equal (default) | Exists
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"` // NoSchedule | PreferNoSchedule | NoExecute
}

// SlurmSettings configure the Slurm launcher (sbatch, squeue, scancel).
type SlurmSettings struct {
	// BinDir holds sbatch, squeue and scancel (default: found on PATH).
	BinDir string `json:"bin_dir"`
	// Trainer is the brightrun-trainer executable on the compute nodes.
	Trainer string `json:"trainer"`
	// WorkDir is the agent's work directory on the node (default: the
	// trainer's own default under $HOME).
	WorkDir string `json:"work_dir"`
	// LogDir is where sbatch writes each agent's output (brightrun-<jobid>.out);
	// it must exist on the nodes (a shared file system) and the server host.
	LogDir string `json:"log_dir"`
	// LogsURL turns a Slurm job id into a link, e.g.
	// "https://ondemand.example.com/files/fs/shared/logs/brightrun-{id}.out"
	// (default: file://LOG_DIR/brightrun-{id}.out).
	LogsURL string `json:"logs_url"`
	// JobName names every agent's Slurm job (default brightrun-agent).
	JobName string `json:"job_name"`
	// ExtraArgs are added to every sbatch call (e.g. ["--mem=64G"]).
	ExtraArgs []string `json:"extra_args"`
	// Env is exported to the agent (e.g. HF_HOME, BRIGHTRUN_MODELS_DIR).
	Env map[string]string `json:"env"`
}

// KubernetesSettings configure the Kubernetes launcher (a batch/v1 Job per attempt).
type KubernetesSettings struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster credentials.
	Kubeconfig string `json:"kubeconfig"`
	Namespace  string `json:"namespace"`
	Image      string `json:"image"` // the trainer image (trainer/Dockerfile)
	// ImagePullSecret names a docker-registry Secret, if the image is private.
	ImagePullSecret string `json:"image_pull_secret"`
	ServiceAccount  string `json:"service_account"`
	// TTLSecondsAfterFinished removes finished Jobs (default 3600).
	TTLSecondsAfterFinished int32 `json:"ttl_seconds_after_finished"`
	// LogsURL turns a Job name into a link, e.g. a Grafana/Loki query with
	// {namespace} and {name} (default: the kubectl command that shows them).
	LogsURL string            `json:"logs_url"`
	Env     map[string]string `json:"env"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// LoadConfig reads and validates the launchers file; an empty path means
// no launchers.
func LoadConfig(path string) (FileConfig, error) {
	if path == "" {
		return FileConfig{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return FileConfig{}, fmt.Errorf("BRIGHTRUN_LAUNCHERS: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return c, fmt.Errorf("BRIGHTRUN_LAUNCHERS %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a launchers file, fills in defaults and reports every
// problem at once.
func ParseConfig(b []byte) (FileConfig, error) {
	var c FileConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("not valid launchers JSON: %w", err)
	}
	c.defaults()
	return c, c.validate()
}

func (c *FileConfig) defaults() {
	if c.SafetyFactor == 0 {
		c.SafetyFactor = 1.5
	}
	if c.MinMinutes == 0 {
		c.MinMinutes = 15
	}
	if c.PollSeconds == 0 {
		c.PollSeconds = 5
	}
	if c.RetryAfterSeconds == 0 {
		c.RetryAfterSeconds = 60
	}
	for i := range c.Launchers {
		l := &c.Launchers[i]
		if l.Slurm != nil && l.Slurm.JobName == "" {
			l.Slurm.JobName = "brightrun-agent"
		}
		if l.Kubernetes != nil && l.Kubernetes.TTLSecondsAfterFinished == 0 {
			l.Kubernetes.TTLSecondsAfterFinished = 3600
		}
	}
}

func (c FileConfig) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.SafetyFactor < 1 {
		bad("safety_factor: %v must be 1 or more (the time limit is the estimate × this factor)", c.SafetyFactor)
	}
	if c.MinMinutes < 1 || c.PollSeconds <= 0 || c.RetryAfterSeconds < 0 {
		bad("min_minutes must be ≥ 1, poll_seconds > 0 and retry_after_seconds ≥ 0")
	}
	seen := map[string]bool{}
	for i, l := range c.Launchers {
		at := fmt.Sprintf("launchers[%d]", i)
		if !nameRE.MatchString(l.Name) {
			bad("%s.name: %q must be 1 to 40 lower-case letters, digits and dashes", at, l.Name)
		} else if seen[l.Name] {
			bad("%s.name: %q is used twice", at, l.Name)
		}
		seen[l.Name] = true
		if l.ServerURL != "" {
			if u, err := url.Parse(l.ServerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("%s.server_url: %q must be an absolute http(s) URL", at, l.ServerURL)
			}
		}
		if l.MaxAgents < 1 {
			bad("%s.max_agents: give the most agents this launcher may run at once (1 or more)", at)
		}
		if l.MaxHours <= 0 {
			bad("%s.max_hours: give the longest time limit one agent may ask for, in hours", at)
		}
		if len(l.GPUTypes) == 0 {
			bad("%s.gpu_types: list the catalog gpu_types this launcher serves (\"CPU\" for CPU agents)", at)
		}
		switch l.Type {
		case "slurm":
			if l.Slurm == nil || l.Slurm.Trainer == "" {
				bad("%s.slurm.trainer: give the brightrun-trainer executable on the compute nodes", at)
			}
			if l.Slurm != nil && !filepath.IsAbs(l.Slurm.LogDir) {
				bad("%s.slurm.log_dir: give an absolute directory, shared by the nodes and the server, for the agents' output", at)
			}
			if l.Kubernetes != nil {
				bad("%s: a slurm launcher takes no kubernetes section", at)
			}
		case "kubernetes":
			k := l.Kubernetes
			if k == nil || k.Namespace == "" || k.Image == "" {
				bad("%s.kubernetes: namespace and image are required", at)
			}
			if l.Slurm != nil {
				bad("%s: a kubernetes launcher takes no slurm section", at)
			}
			for gpu, g := range l.GPUTypes {
				for j, t := range g.Tolerations {
					if t.Operator != "" && t.Operator != "Equal" && t.Operator != "Exists" {
						bad("%s.gpu_types[%q].tolerations[%d].operator: %q is not Equal or Exists", at, gpu, j, t.Operator)
					}
				}
			}
		default:
			bad("%s.type: %q is not one of slurm, kubernetes", at, l.Type)
		}
	}
	return errors.Join(errs...)
}

// CheckGPUTypes reports gpu_types the catalog does not know.
func (c FileConfig) CheckGPUTypes(known func(string) bool) error {
	var errs []error
	for i, l := range c.Launchers {
		for gpu := range l.GPUTypes {
			if !known(gpu) {
				errs = append(errs, fmt.Errorf("BRIGHTRUN_LAUNCHERS launchers[%d].gpu_types: %q is not a gpu_type of the catalog (GET /api/catalog)", i, gpu))
			}
		}
	}
	return errors.Join(errs...)
}

// Poll is the reconciler's period.
func (c FileConfig) Poll() time.Duration { return time.Duration(c.PollSeconds * float64(time.Second)) }
