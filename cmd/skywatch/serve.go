package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
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
	level := new(slog.LevelVar)
	logger, _ := newLevelLogger(s.log, stderr, level)
	s.source = &configSource{path: *path, file: fc, level: level}
	// SIGHUP reloads the config file from now on (main ignores it until
	// then, so that it never ends the process).
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
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
	scheme := "http"
	if s.viewer.TLSCertFile != "" {
		scheme = "https"
	}
	logger.Info("skywatch serving", "http", scheme+"://"+a.web.Addr().String()+"/", "cameras", len(s.ingest.Cameras),
		"mqtt", a.intake.Status().Address, "devices", len(s.alarms.Devices))
	reloading := make(chan struct{})
	go func() {
		defer close(reloading)
		a.reloadOnSignal(ctx, hups)
	}()
	a.wait(ctx)
	<-reloading
	return 0
}
