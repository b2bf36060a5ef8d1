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

// defaultMemoryLimit is the Go memory limit when GOMEMLIMIT is not set.
const defaultMemoryLimit = 40 << 20

func main() {
	// Requests allocate a few kilobytes that die at once; at the default
	// GOGC=100 the collector took about a fifth of the CPU under load. Three
	// times the headroom costs some 7 MB of memory and 10-30% less CPU per
	// request (see README, Performance). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	// With that headroom, sign-ins, whose argon2id hashes each allocate 12
	// MiB at once, took the peak RSS to 150 MB; a soft limit of 40 MiB of
	// Go memory holds it near 70 MB at the same sign-in rate, and the other
	// scenarios, whose heap stays far below it, do not notice it. Near the
	// limit the collector works harder; it never fails an allocation. A
	// GOMEMLIMIT in the environment wins, for heaps larger than this.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
