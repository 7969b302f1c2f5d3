package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/store"
)

// cleanEnv keeps the developer's BRIGHTRUN_* settings out of the test and
// makes sure nothing here could bind :8080 or start a trainer agent, even if
// a command wrongly got as far as serving.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "BRIGHTRUN_") {
			t.Setenv(k, "")
		}
	}
	t.Setenv("BRIGHTRUN_ADDR", "127.0.0.1:0")
	t.Setenv("BRIGHTRUN_LOCAL_AGENT", "false")
}

// cancelled is a context that stops any server before it could serve.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestGlobalFlagsBeforeTheCommand(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	ctx := context.Background() // users and tokens create never serve
	if err := run(ctx, []string{"--data-dir", dir, "users", "create", "--email", "lead@example.com", "--password", "long enough password"}); err != nil {
		t.Fatalf("users create with --data-dir first: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "brightrun.db")); err != nil {
		t.Fatalf("the account was not created in the given data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, lockFile)); !os.IsNotExist(err) {
		t.Fatalf("users create took the server lock (it must not start a server): %v", err)
	}
	// The same user is found through a second command with the flag first
	// and with the "--" terminator: the data dir really was used.
	if err := run(ctx, []string{"--data-dir=" + dir, "--", "tokens", "create", "--email", "lead@example.com"}); err != nil {
		t.Fatalf("tokens create with --data-dir first: %v", err)
	}
}

func TestUnexpectedArgumentsAreRefused(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "bogus"}, `serve: unexpected argument "bogus"`},
		{[]string{"--data-dir", dir, "serve", "bogus"}, `serve: unexpected argument "bogus"`},
		{[]string{"serve", "--data-dir", dir, "bogus"}, `serve: unexpected argument "bogus"`},
		{[]string{"migrate", "now"}, `migrate: unexpected argument "now"`},
		{[]string{"users", "create", "--email", "a@example.com", "--password", "long enough password", "extra"}, `users create: unexpected argument "extra"`},
		{[]string{"tokens", "create", "stray", "--email", "a@example.com"}, `tokens create: unexpected argument "stray"`},
		{[]string{"--data-dir", dir, "agents", "create", "--name", "gpu1", "more"}, `agents create: unexpected argument "more"`},
		{[]string{"help", "me"}, `help: unexpected argument "me"`},
		{[]string{"--email", "a@example.com", "users", "create"}, "flag provided but not defined: -email"},
		{[]string{"--data-dir"}, "flag needs an argument: -data-dir"},
		{[]string{"--data-dir", dir, "users"}, "users: missing subcommand"},
		{[]string{"--data-dir", dir, "users", "delete"}, `users: unknown subcommand "delete"`},
		{[]string{"--data-dir", dir, "bogus"}, `unknown command "bogus"`},
	} {
		err := run(cancelled(), c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: got %v, want an error containing %q", c.args, err, c.want)
		}
	}
	// None of them created anything in the data dir: each was refused
	// before opening the store or taking the lock.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("refused commands left files in the data dir: %v", ents)
	}
}

func TestSecondServerOnOneDataDirIsRefused(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	first, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("another brightrun server is using %s (pid %d)", dir, os.Getpid())
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second lock: got %v, want %q", err, want)
	}
	// serve takes the lock before anything else.
	if err := run(cancelled(), []string{"serve", "--data-dir", dir}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("serve on a locked data dir: got %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "brightrun.db")); !os.IsNotExist(err) {
		t.Fatalf("the refused server opened the database: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Close()
}

// The first account is an operator; later ones only with --admin.
func TestUsersCreateAdmin(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	ctx := context.Background()
	for _, args := range [][]string{
		{"--email", "first@example.com"}, {"--email", "second@example.com"}, {"--email", "third@example.com", "--admin"},
	} {
		if err := run(ctx, append([]string{"--data-dir", dir, "users", "create", "--password", "long enough password"}, args...)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := load("check", []string{"--data-dir", dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sys := store.AsSystem(ctx)
	for email, want := range map[string]bool{"first@example.com": true, "second@example.com": false, "third@example.com": true} {
		u, err := st.UserGetByEmail(sys, email)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := st.OperatorIs(sys, u.ID); err != nil || got != want {
			t.Errorf("%s operator: %v %v, want %v", email, got, err, want)
		}
	}
}
