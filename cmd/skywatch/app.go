package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/recorder"
	"github.com/skywatch/skywatch/viewer"
)

// app is Skywatch built from settings: the camera manager, the alarm store,
// intake and incident engine, the warmer of new incidents' cameras, and the
// web server, started in that order and closed in reverse.
type app struct {
	logger  *slog.Logger
	cameras *ingest.Manager
	store   alarmStore
	intake  *alarms.Intake
	engine  *alarms.Engine
	warmer  *incidentWarmer // nil when ingest.warm_on_alarm is 0
	// evidence connects incidents and the recorder's clips; nil when no
	// camera records.
	evidence *incidentEvidence
	// recorder records cameras and keeps evidence clips; with no camera
	// that records it starts nothing.
	recorder *recorder.Recorder
	web      *viewer.Server
	records  records
	// cluster is this node's membership of a cluster (cluster.go); nil
	// without a cluster: section. Built after the store opens, started
	// first, closed just before the store.
	cluster *cluster.Cluster
	// ops shows the cluster to admins and publishes this node's figures
	// (cluster_ops.go); nil without a cluster.
	ops *clusterOps
	// leader runs the engine's terms while this node holds the engine's
	// lease (cluster_engine.go); nil without a cluster.
	leader *engineLeader
	// clusterIntake joins the intake to the cluster (cluster_intake.go);
	// nil without a cluster.
	clusterIntake *clusterIntake
	// video puts cameras under the cluster's leases (cluster_video.go);
	// nil without a cluster.
	video *clusterVideo
	// reloads reloads the config file (reload.go); nil without one (the
	// demo).
	reloads *reloader
	// control serves `skywatch backup` on store.control_socket
	// (control.go); nil when off, and in the demo.
	control *controlServer
}

// records is the audit log and preference store the console writes to,
// which also keeps the console's API tokens.
type records interface {
	viewer.Records
	viewer.TokenStore
	Close() error
}

// newApp builds every part; it opens the store, which with Redis waits
// (retrying) until Redis answers or ctx ends.
func newApp(ctx context.Context, s *settings, logger *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	a := &app{logger: logger}
	clusterVideoSettings(s)
	a.cameras = ingest.NewManager(s.ingest, logger.With("component", "ingest"))
	if err := reg.Register(a.cameras.Collector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	var err error

	a.recorder, err = recorder.New(s.recorder, a.cameras, reg, logger.With("component", "recorder"))
	if err != nil {
		a.cameras.Close()
		return nil, err
	}

	store, err := openStore(ctx, s.store, logger.With("component", "store"))
	if err != nil {
		a.closeAll()
		return nil, err
	}
	a.store = store
	a.cluster, err = newCluster(s, reg, logger.With("component", "cluster"))
	if err != nil {
		a.closeAll()
		return nil, err
	}
	peers := a.wireClusterVideo(s)
	a.intake, err = alarms.NewIntake(s.alarms, store, hardware.Decoders(), logger.With("component", "alarms"))
	if err != nil {
		a.closeAll()
		return nil, err
	}
	if a.cluster != nil {
		a.clusterIntake, err = newClusterIntake(ctx, a.intake, a.cluster, logger.With("component", "alarms"))
		if err != nil {
			a.closeAll()
			return nil, err
		}
	}
	engOpts := alarms.EngineOptions{
		Cameras: s.sites,
		Logger:  logger.With("component", "incidents"),
	}
	if err := clusterEngineOptions(&engOpts, store, s.cluster); err != nil {
		a.closeAll()
		return nil, err
	}
	a.engine, err = alarms.NewEngine(a.intake, store, engOpts)
	if err != nil {
		a.closeAll()
		return nil, err
	}
	if s.warm > 0 {
		a.warmer = newIncidentWarmer(a.warmHolder(), s.warm, logger.With("component", "warm"))
	}
	if s.recorder.Recording() {
		a.evidence = newIncidentEvidence(a.recorder, a.engine, logger.With("component", "evidence"))
	}
	if err := reg.Register(a.intake.Collector()); err != nil {
		a.closeAll()
		return nil, fmt.Errorf("metrics: %w", err)
	}

	users, err := accounts.NewDirectory(s.users)
	if err != nil {
		a.closeAll()
		return nil, fmt.Errorf("users: %w", err)
	}
	a.records, err = openRecords(ctx, s.store, logger.With("component", "records"))
	if err != nil {
		a.closeAll()
		return nil, err
	}
	if a.reloads, err = newReloader(s, users, reg); err != nil {
		a.closeAll()
		return nil, err
	}
	deps := viewer.Deps{
		Accounts:     users,
		Records:      a.records,
		Tokens:       s.tokens,
		TokenStore:   a.records,
		CameraPlaces: s.places,
		Cameras:      a.wireClusterCameras(watchCameras(peers, viewer.Adapt[*ingest.Reader](a.cameras))),
		Alarms:       a.intake,
		Incidents:    a.engine,
		Patrol:       a.engine,
		CheckUnit:    a.intake.CheckUnit,
		Registry:     reg,
		Recordings:   viewer.AdaptRecorder(a.recorder, s.recorder.MaxExport),
		NodeStats:    (&nodeMeter{gather: reg}).now,
		Peers:        peers,
	}
	if a.reloads != nil {
		deps.Reloader = a
	}
	if err := a.wireClusterOps(ctx, s, reg, &deps); err != nil {
		a.closeAll()
		return nil, err
	}
	a.web, err = viewer.New(s.viewer, deps, logger.With("component", "viewer"))
	if err != nil {
		a.closeAll()
		return nil, err
	}
	return a, nil
}

// start starts the parts in order; if one fails, the ones started are closed.
func (a *app) start(ctx context.Context) error {
	if err := a.startCluster(ctx); err != nil {
		a.closeAll()
		return err
	}
	a.startClusterOps()
	a.cameras.Start()
	if err := a.recorder.Start(ctx); err != nil {
		a.closeAll()
		return err
	}
	if err := a.intake.Start(ctx); err != nil {
		a.closeAll()
		return err
	}
	if a.warmer != nil {
		// Before the engine starts, so that it sees the incidents that
		// events stored meanwhile open.
		a.warmer.start(a.engine)
	}
	if a.evidence != nil {
		// Before the engine starts too, for the same reason.
		a.evidence.start()
	}
	if err := a.engine.Start(ctx); err != nil {
		a.closeAll()
		return err
	}
	if a.cluster != nil {
		a.clusterIntake.Start()
		// Supervision of silent devices runs on the engine's node.
		a.leader = startEngineLeader(a.cluster, a.engine, a.logger.With("component", "incidents"), a.clusterIntake.LeaderTerm)
	}
	if err := a.web.Start(); err != nil {
		a.closeAll()
		return err
	}
	return nil
}

// wait blocks until ctx ends, then closes everything in reverse order.
func (a *app) wait(ctx context.Context) {
	<-ctx.Done()
	a.logger.Info("shutting down")
	a.reloads.close() // after a reload under way
	a.closeAll()
}

// closeAll closes what was built, in reverse order. Each part's Close is
// idempotent.
func (a *app) closeAll() {
	if a.control != nil {
		// First: a backup in progress holds a read transaction that
		// closing the store would wait for.
		if err := a.control.Close(); err != nil {
			a.logger.Warn("close control socket", "error", err)
		}
	}
	if a.web != nil {
		if err := a.web.Close(); err != nil {
			a.logger.Warn("close web server", "error", err)
		}
	}
	if a.records != nil {
		if err := a.records.Close(); err != nil {
			a.logger.Warn("close audit records", "error", err)
		}
	}
	if a.warmer != nil {
		a.warmer.close()
	}
	if a.evidence != nil {
		a.evidence.close()
	}
	a.leader.close() // ends the engine's term and releases its lease
	if a.clusterIntake != nil {
		a.clusterIntake.Close()
	}
	if a.engine != nil {
		if err := a.engine.Close(); err != nil {
			a.logger.Warn("close incident engine", "error", err)
		}
	}
	if a.intake != nil {
		if err := a.intake.Close(); err != nil {
			a.logger.Warn("close alarm intake", "error", err)
		}
	}
	if a.cluster != nil {
		// Stop pulling before the camera claims are given up: another
		// node may take them at once.
		a.cameras.Close()
	}
	a.closeClusterOps()
	a.closeCluster()
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.logger.Warn("close alarm store", "error", err)
		}
	}
	if a.recorder != nil {
		if err := a.recorder.Close(); err != nil {
			a.logger.Warn("close recorder", "error", err)
		}
	}
	a.cameras.Close()
}
