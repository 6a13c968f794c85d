// Command skywatch runs the Skywatch command-centre server.
//
//	skywatch serve -config skywatch.yaml   run with a config file
//	skywatch check -config skywatch.yaml   validate a config file and print every problem
//	skywatch demo                          run with simulated cameras on embedded defaults
//	skywatch backup -config F -out B.tar   copy the alarm store and records, while serve runs or not
//	skywatch restore -config F -in B.tar   put a backup back into an empty data directory
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	// Operators' time zones are checked and shown even on hosts without a
	// zoneinfo database (minimal containers).
	_ "time/tzdata"
)

func main() {
	// SIGHUP's default action ends the process: serve reloads its config
	// on it, and nothing else may die of it (a stray `systemctl reload`).
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
