// Command server runs Gatehouse, an OAuth 2 and OpenID Connect
// authorization server, and manages its users and clients.
//
//	server [serve] [flags]           run the server (migrations first)
//	server migrate [flags]           apply database migrations and exit
//	server users create --username U --password-stdin
//	server users set-email --username U --email E [--verified]
//	server clients create --name N --redirect-uri U [--public] [--scope S] [--grant-type G]
//	server clients list | server clients delete ID
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// Requests allocate a few kilobytes that die at once; at the default
	// GOGC=100 the collector took about a fifth of the CPU under load. Three
	// times the headroom costs some 7 MB of memory and 10-30% less CPU per
	// request (see README, Performance). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run is the whole program; main only supplies the process's environment,
// so tests run exactly what main runs.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout, stderr)
	case "users":
		return usersCommand(ctx, args, getenv, stdin, stdout, stderr)
	case "clients":
		return clientsCommand(ctx, args, getenv, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (want serve, migrate, users or clients)", cmd)
}
