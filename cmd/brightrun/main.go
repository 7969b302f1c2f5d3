// Command brightrun is the BrightRun server and its admin commands.
//
//	brightrun [serve]                               start the web UI, API and workers
//	brightrun migrate                               apply database migrations
//	brightrun users create --email E [--password P] [--admin] create a local account (password from stdin if omitted)
//	brightrun tokens create --email E [--name N]    print a new API token as the last line
//	brightrun agents create --name N                print a new trainer agent token as the last line
//
// Every command takes --data-dir and --database-url (and the other settings,
// see `brightrun serve -h`), or the BRIGHTRUN_* environment variables. The
// settings may come before the command (brightrun --data-dir D users create
// …); a command's own flags come after it. No command takes positional
// arguments, and serve refuses a data directory another server holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/brightrun/brightrun/internal/config"
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
	// Global flags may come before the command (brightrun --data-dir D users
	// create …): they are moved behind the command (and its subcommand) so the
	// command parses them with its own flags.
	lead, args, err := splitLeadingFlags(args)
	if err != nil {
		return err
	}
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	with := func(rest []string) []string { return append(append([]string{}, lead...), rest...) }
	switch cmd {
	case "serve":
		return serve(ctx, with(args))
	case "migrate":
		return migrateCmd(ctx, with(args))
	case "users":
		return sub(ctx, "users", lead, args, map[string]func(context.Context, []string) error{"create": usersCreate})
	case "tokens":
		return sub(ctx, "tokens", lead, args, map[string]func(context.Context, []string) error{"create": tokensCreate})
	case "agents":
		return sub(ctx, "agents", lead, args, map[string]func(context.Context, []string) error{"create": agentsCreate})
	case "help":
		if len(args) > 0 {
			return fmt.Errorf("help: unexpected argument %q\n\n%s", args[0], usage)
		}
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}

// splitLeadingFlags separates the global flags given before the command from
// the command and what follows it. Only the global settings are accepted
// there; -h/--help before any command prints the usage.
func splitLeadingFlags(args []string) (lead, rest []string, err error) {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		return nil, args, nil
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			return nil, nil, fmt.Errorf("%s: unexpected argument %q\n\n%s", args[0], args[1], usage)
		}
		return nil, []string{"help"}, nil
	}
	// The settings' flag set, borrowed from config.Load (nothing is parsed
	// from the environment here; each command loads its settings itself).
	var fs *flag.FlagSet
	_, _, _ = config.Load("brightrun", nil, nil, func(f *flag.FlagSet) { fs = f })
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, nil, fmt.Errorf("%v (global flags before the command must be settings such as --data-dir; command flags such as --email go after it)\n\n%s", err, usage)
	}
	rest = fs.Args()
	lead = args[:len(args)-len(rest)]
	if n := len(lead); n > 0 && lead[n-1] == "--" {
		lead = lead[:n-1]
	}
	return lead, rest, nil
}

const usage = `usage:
  brightrun [serve] [flags]                              start the server (default)
  brightrun migrate [flags]                              apply database migrations
  brightrun users create --email E [--password P] [--admin]        create a local account (password read from stdin when omitted)
  brightrun tokens create --email E [--name N]           print a new API token as the last line of stdout
  brightrun agents create --name N                       print a new trainer agent token as the last line of stdout
settings for every command, before or after it: --data-dir, --database-url, … (brightrun serve -h lists them all)`

func sub(ctx context.Context, name string, lead, args []string, cmds map[string]func(context.Context, []string) error) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: missing subcommand\n\n%s", name, usage)
	}
	f, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("%s: unknown subcommand %q\n\n%s", name, args[0], usage)
	}
	return f(ctx, append(append([]string{}, lead...), args[1:]...))
}
