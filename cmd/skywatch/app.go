package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/viewer"
)

// app is Skywatch built from settings: the camera manager and the web
// server, started in order and closed in reverse.
type app struct {
	logger  *slog.Logger
	cameras *ingest.Manager
	web     *viewer.Server
}

func newApp(s *settings, logger *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cameras := ingest.NewManager(s.ingest, logger.With("component", "ingest"))
	if err := reg.Register(cameras.Collector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	web, err := viewer.New(s.viewer, viewer.Deps{
		Cameras:  viewer.Adapt[*ingest.Reader](cameras),
		Registry: reg,
	}, logger.With("component", "viewer"))
	if err != nil {
		return nil, err
	}
	return &app{logger: logger, cameras: cameras, web: web}, nil
}

// start starts the parts in order; if one fails, the ones started are closed.
func (a *app) start() error {
	a.cameras.Start()
	if err := a.web.Start(); err != nil {
		a.cameras.Close()
		return err
	}
	return nil
}

// wait blocks until ctx ends, then closes everything in reverse order.
func (a *app) wait(ctx context.Context) {
	<-ctx.Done()
	a.logger.Info("shutting down")
	a.close()
}

func (a *app) close() {
	a.web.Close()
	a.cameras.Close()
}
