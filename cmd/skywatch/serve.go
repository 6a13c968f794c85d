package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "skywatch.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fc, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch:", err)
		return 1
	}
	s, err := buildSettings(fc)
	if err != nil {
		fmt.Fprintf(stderr, "skywatch: %s is not valid:\n%s\n", *path, indent(err.Error()))
		return 1
	}
	logger, _ := newLogger(s.log, stderr)
	a, err := newApp(ctx, s, logger)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch:", err)
		return 1
	}
	if err := a.startControl(s.store.control); err != nil {
		a.closeAll()
		fmt.Fprintln(stderr, "skywatch:", err)
		return 1
	}
	if err := a.start(ctx); err != nil {
		fmt.Fprintln(stderr, "skywatch:", err)
		return 1
	}
	logger.Info("skywatch serving", "http", "http://"+a.web.Addr().String()+"/", "cameras", len(s.ingest.Cameras),
		"mqtt", a.intake.Status().Address, "devices", len(s.alarms.Devices))
	a.wait(ctx)
	return 0
}
