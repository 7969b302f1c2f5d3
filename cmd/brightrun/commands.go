package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/agentapi"
	"github.com/brightrun/brightrun/internal/app"
	"github.com/brightrun/brightrun/internal/auth"
	"github.com/brightrun/brightrun/internal/config"
	"github.com/brightrun/brightrun/internal/httpx"
	"github.com/brightrun/brightrun/internal/store"
)

func serve(ctx context.Context, args []string) error {
	c, err := load("serve", args, nil)
	if err != nil {
		return err
	}
	lock, err := lockDataDir(c.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	log := app.NewLogger(c, os.Stderr)
	a, err := app.New(ctx, c, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("BRIGHTRUN_ADDR: cannot listen on %s: %w", c.Addr, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	wg := a.RunWorkers(wctx)
	log.Info("BrightRun is running", "url", c.PublicURL, "engine", a.Store.Engine(), "auth", c.Auth, "storage", c.Storage, "data_dir", c.DataDir)
	fmt.Fprintf(os.Stderr, "\n  BrightRun is running at %s\n\n", c.PublicURL)
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	err = httpx.Serve(ctx, log, srv, ln, c.ShutdownTimeout)
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	log.Info("stopped")
	return err
}

// load reads a command's settings from args and the environment and refuses
// positional arguments: no command takes any.
func load(name string, args []string, extra func(*flag.FlagSet)) (config.Config, error) {
	c, rest, err := config.Load(name, args, os.Getenv, extra)
	if len(rest) > 0 {
		return c, fmt.Errorf("%s: unexpected argument %q (%s takes flags only; see brightrun %s -h)", name, rest[0], name, name)
	}
	return c, err
}

func migrateCmd(ctx context.Context, args []string) error {
	c, err := load("migrate", args, nil)
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Printf("migrations applied (%s)\n", st.Engine())
	return nil
}

func usersCreate(ctx context.Context, args []string) error {
	var email, password string
	var admin bool
	c, err := load("users create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "account email (required)")
		fs.StringVar(&password, "password", "", "password (read from stdin when omitted)")
		fs.BoolVar(&admin, "admin", false, "make the user an operator (sees and manages trainer agents); the first account always is one")
	})
	if err != nil {
		return err
	}
	if email == "" {
		return errors.New("users create: --email is required")
	}
	if password == "" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("users create: give --password or the password on stdin")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	st, err := app.OpenStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	op := store.OperatorIfNone
	if admin {
		op = store.OperatorAlways
	}
	u, err := auth.NewLocal(st).SignupAs(ctx, auth.Credentials{Email: email, Password: password}, op)
	if err != nil {
		return err
	}
	fmt.Printf("created user %s (%s)\n", u.Email, u.ID)
	return nil
}

func tokensCreate(ctx context.Context, args []string) error {
	var email, name string
	c, err := load("tokens create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "account email (required)")
		fs.StringVar(&name, "name", "cli", "token name")
	})
	if err != nil {
		return err
	}
	if email == "" {
		return errors.New("tokens create: --email is required")
	}
	st, err := app.OpenStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserGetByEmail(store.AsSystem(ctx), email)
	if err != nil {
		return fmt.Errorf("tokens create: no user with email %s: %w", email, err)
	}
	tok, t, err := auth.CreateToken(ctx, st, u.ID, name, nil, time.Now().UTC())
	if err != nil {
		return err
	}
	fmt.Printf("created API token %q for %s (id %s); it is shown once:\n%s\n", t.Name, u.Email, t.ID, tok)
	return nil
}

func agentsCreate(ctx context.Context, args []string) error {
	var name string
	c, err := load("agents create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "agent name (required), e.g. the GPU machine's host name")
	})
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("agents create: --name is required")
	}
	st, err := app.OpenStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, a, err := agentapi.CreateAgent(ctx, st, name)
	if err != nil {
		return err
	}
	fmt.Printf("created agent %q (id %s); run `brightrun-trainer agent --server %s --token TOKEN`; the token is shown once:\n%s\n", a.Name, a.ID, c.PublicURL, tok)
	return nil
}
