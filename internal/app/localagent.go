package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
)

// localAgent runs one trainer agent as a child process for the embedded
// default, restarting it if it exits, and stops it with the server.
func (a *App) localAgent(svc *agentapi.Service) func(ctx context.Context) {
	return func(ctx context.Context) {
		exe := a.Config.Trainer
		if _, err := os.Stat(exe); err != nil {
			a.Log.Warn("local trainer agent not started: trainer not installed (run `make setup`, or set BRIGHTRUN_TRAINER)", "path", exe)
			return
		}
		tok, agent, err := svc.CreateAgent(ctx, "local")
		if err != nil {
			a.Log.Error("local trainer agent: register", "err", err)
			return
		}
		a.Log.Info("starting the local trainer agent", "trainer", exe, "agent", agent.ID)
		for backoff := time.Second; ctx.Err() == nil; backoff = min(backoff*2, time.Minute) {
			start := time.Now()
			cmd := exec.Command(exe, "agent", "--server", a.Config.PublicURL, "--token", tok, "--gpu-type", "CPU", "--name", "local",
				"--work-dir", filepath.Join(a.Config.DataDir, "agent"))
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
			if err := cmd.Start(); err != nil {
				a.Log.Error("local trainer agent: start", "err", err)
				return
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
				a.Log.Info("local trainer agent stopped")
				return
			case err := <-done:
				if time.Since(start) > 5*time.Minute {
					backoff = time.Second
				}
				a.Log.Warn("local trainer agent exited; restarting", "err", err, "in", backoff)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}
