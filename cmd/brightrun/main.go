// Command brightrun is the BrightRun server and its admin commands.
//
//	brightrun [serve]                               start the web UI, API and workers
//	brightrun migrate                               apply database migrations
//	brightrun users create --email E [--password P] create a local account (password from stdin if omitted)
//	brightrun tokens create --email E [--name N]    print a new API token as the last line
//	brightrun agents create --name N                print a new trainer agent token as the last line
//
// Every command takes --data-dir and --database-url (and the other settings,
// see `brightrun serve -h`), or the BRIGHTRUN_* environment variables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "brightrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args)
	case "migrate":
		return migrateCmd(ctx, args)
	case "users":
		return sub(ctx, "users", args, map[string]func(context.Context, []string) error{"create": usersCreate})
	case "tokens":
		return sub(ctx, "tokens", args, map[string]func(context.Context, []string) error{"create": tokensCreate})
	case "agents":
		return sub(ctx, "agents", args, map[string]func(context.Context, []string) error{"create": agentsCreate})
	case "help", "-h", "--help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}

const usage = `usage:
  brightrun [serve] [flags]                              start the server (default)
  brightrun migrate [flags]                              apply database migrations
  brightrun users create --email E [--password P]        create a local account (password read from stdin when omitted)
  brightrun tokens create --email E [--name N]           print a new API token as the last line of stdout
  brightrun agents create --name N                       print a new trainer agent token as the last line of stdout
flags for every command: --data-dir, --database-url, … (brightrun serve -h lists them all)`

func sub(ctx context.Context, name string, args []string, cmds map[string]func(context.Context, []string) error) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: missing subcommand\n\n%s", name, usage)
	}
	f, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("%s: unknown subcommand %q\n\n%s", name, args[0], usage)
	}
	return f(ctx, args[1:])
}
