// Command server runs Gatehouse, an OAuth 2 and OpenID Connect
// authorization server, and manages its users and clients.
//
//	server [serve] [flags]     run the server (migrations first)
//	server migrate             apply database migrations and exit
//	server users create|list|delete|set-email
//	server clients create|list|show|update|delete
//	server keys list|rotate
//	server audit               print security events
//	server help [command]      what each command takes (commands in cli.go)
package main

import (
	"context"
	"fmt"
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
