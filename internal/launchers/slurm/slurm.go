// Package slurm launches ephemeral trainer agents as Slurm batch jobs with
// sbatch, watches them with squeue and stops them with scancel (os/exec;
// the commands' directory is configurable).
package slurm

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/launchers"
)

// Launcher is a Slurm launcher.
type Launcher struct {
	set  launchers.SlurmSettings
	gpus map[string]launchers.GPUSettings
}

var _ launchers.Launcher = (*Launcher)(nil)

// New builds a Slurm launcher from its validated settings.
func New(s launchers.Settings) *Launcher {
	return &Launcher{set: *s.Slurm, gpus: s.GPUTypes}
}

// Kind is "slurm".
func (l *Launcher) Kind() string { return "slurm" }

func (l *Launcher) bin(name string) string {
	if l.set.BinDir == "" {
		return name
	}
	return filepath.Join(l.set.BinDir, name)
}

// run runs one Slurm command and returns its stdout; a failure carries its stderr.
func (l *Launcher) run(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, l.bin(name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Args are the sbatch arguments for spec (exported for tests and docs).
func (l *Launcher) Args(spec launchers.Spec) []string {
	minutes := max(1, int(spec.TimeLimit.Minutes()+0.5))
	args := []string{"--parsable", "--job-name=" + l.set.JobName, "--time=" + strconv.Itoa(minutes),
		// The server's environment (database URL, storage keys) must not
		// reach the job: the script exports what the agent needs.
		"--export=NONE",
		"--output=" + l.logPath("%j"), "--comment=brightrun job " + spec.JobID + " attempt " + strconv.Itoa(spec.Attempt)}
	g := l.gpus[spec.GPUType]
	for flag, v := range map[string]string{"--partition=": g.Partition, "--account=": g.Account, "--qos=": g.QOS} {
		if v != "" {
			args = append(args, flag+v)
		}
	}
	if !strings.EqualFold(spec.GPUType, "CPU") {
		gres := g.Gres
		if gres == "" {
			gres = "gpu"
		}
		args = append(args, fmt.Sprintf("--gres=%s:%d", gres, spec.GPUCount))
	}
	sort.Strings(args[6:]) // a stable order for the optional flags (golden tests)
	return append(args, l.set.ExtraArgs...)
}

func (l *Launcher) logPath(id string) string {
	return filepath.Join(l.set.LogDir, "brightrun-"+id+".out")
}

// Script is the batch script: it exports the one-job token and the
// configured environment, then runs the agent for one job.
func (l *Launcher) Script(spec launchers.Spec) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# BrightRun launch %s: job %s, attempt %d\n", spec.LaunchID, spec.JobID, spec.Attempt)
	keys := make([]string, 0, len(l.set.Env))
	for k := range l.set.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, quote(l.set.Env[k]))
	}
	fmt.Fprintf(&b, "export PYTHONUNBUFFERED=1 BRIGHTRUN_AGENT_TOKEN=%s\n", quote(spec.Token))
	args := []string{l.set.Trainer, "agent", "--server", spec.ServerURL, "--gpu-type", spec.GPUType, "--gpu-count", strconv.Itoa(spec.GPUCount),
		"--name", spec.AgentName, "--exit-after-job", "--idle-exit-seconds", "600"}
	if l.set.WorkDir != "" {
		args = append(args, "--work-dir", filepath.Join(l.set.WorkDir, spec.LaunchID))
	}
	b.WriteString("exec")
	for _, a := range args {
		b.WriteString(" " + quote(a))
	}
	b.WriteString("\n")
	return b.String()
}

// quote single-quotes s for sh.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Submit runs sbatch with the script on stdin (so the token is on no command line).
func (l *Launcher) Submit(ctx context.Context, spec launchers.Spec) (launchers.Handle, error) {
	out, err := l.run(ctx, []byte(l.Script(spec)), "sbatch", l.Args(spec)...)
	if err != nil {
		return launchers.Handle{}, err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // --parsable: "ID" or "ID;CLUSTER"
	if _, err := strconv.Atoi(id); err != nil {
		return launchers.Handle{}, fmt.Errorf("sbatch answered %q, not a job id", strings.TrimSpace(out))
	}
	return launchers.Handle{ExternalID: id, LogsURL: l.logsURL(id)}, nil
}

func (l *Launcher) logsURL(id string) string {
	if l.set.LogsURL != "" {
		return strings.ReplaceAll(l.set.LogsURL, "{id}", id)
	}
	return "file://" + l.logPath(id)
}

// Stop cancels the job (Slurm sends SIGTERM, then SIGKILL after KillWait).
// A job that already ended is not an error.
func (l *Launcher) Stop(ctx context.Context, id string) error {
	if _, err := strconv.Atoi(id); err != nil {
		return fmt.Errorf("%q is not a Slurm job id", id)
	}
	_, err := l.run(ctx, nil, "scancel", id)
	if err != nil && (strings.Contains(err.Error(), "already completing or completed") || strings.Contains(err.Error(), "Invalid job id")) {
		return nil
	}
	return err
}

// States asks squeue about this launcher's jobs; ids squeue no longer
// lists have ended.
func (l *Launcher) States(ctx context.Context, ids []string) (map[string]launchers.State, error) {
	out, err := l.run(ctx, nil, "squeue", "--noheader", "--states=all", "--me", "--name="+l.set.JobName, "--format=%i|%T")
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if id, state, ok := strings.Cut(strings.TrimSpace(line), "|"); ok {
			seen[id] = state
		}
	}
	res := make(map[string]launchers.State, len(ids))
	for _, id := range ids {
		res[id] = stateOf(seen[id])
	}
	return res, nil
}

func stateOf(s string) launchers.State {
	switch s {
	case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED":
		return launchers.StatePending
	case "RUNNING":
		return launchers.StateRunning
	}
	return launchers.StateDone // COMPLETING, COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, …, or gone
}
