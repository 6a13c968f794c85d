package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/recorder"
	"github.com/skywatch/skywatch/viewer"
)

// configSource is the config file serve runs from, which a reload reads
// again; the demo has none.
type configSource struct {
	path string
	// file is the file as loaded at start.
	file *fileConfig
	// level is the logger's level, which log.level sets live.
	level *slog.LevelVar
}

// reloadResult is what a reload did (viewer.ReloadResult, whose Changes
// are reloadChanges).
type reloadResult = viewer.ReloadResult

// reloader keeps what a reload compares the file with. One reload runs at
// a time (mu), whether SIGHUP or an admin asked.
type reloader struct {
	path  string
	level *slog.LevelVar
	m     reloadMetrics

	mu     sync.Mutex
	closed bool
	// started is the file as it was at start: keys that need a restart
	// still run with its values.
	started *fileConfig
	// live is the file whose live parts are in force, and s their
	// settings (with started's restart-only parts).
	live *fileConfig
	s    *settings
	// users is the operator directory in force: rebuilt only when the
	// users change (building one hashes a dummy password).
	users *accounts.Directory
}

// reloadMetrics say how reloads went, for alerting on a config that
// failed to apply.
type reloadMetrics struct {
	total  *prometheus.CounterVec
	ok     prometheus.Gauge
	okTime prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) (reloadMetrics, error) {
	m := reloadMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skywatch_config_reloads_total",
			Help: "Reloads of the config file (SIGHUP or POST /api/admin/reload), by result: applied, invalid (old config kept), failed (applied part way)."},
			[]string{"result"}),
		ok: prometheus.NewGauge(prometheus.GaugeOpts{Name: "skywatch_config_last_reload_successful",
			Help: "1 when the last reload of the config file applied (or none was tried since start), 0 when it was invalid or failed."}),
		okTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "skywatch_config_last_reload_success_timestamp_seconds",
			Help: "When the config file was last applied (start or reload), in Unix seconds."}),
	}
	for _, c := range []prometheus.Collector{m.total, m.ok, m.okTime} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	for _, r := range []string{viewer.ReloadApplied, viewer.ReloadInvalid, viewer.ReloadFailed} {
		m.total.WithLabelValues(r)
	}
	m.ok.Set(1)
	m.okTime.Set(float64(time.Now().Unix()))
	return m, nil
}

func (m reloadMetrics) record(result string, at time.Time) {
	m.total.WithLabelValues(result).Inc()
	if result == viewer.ReloadApplied {
		m.ok.Set(1)
		m.okTime.Set(float64(at.Unix()))
		return
	}
	m.ok.Set(0)
}

// newReloader keeps s and its file for reloads; nil without a file.
func newReloader(s *settings, users *accounts.Directory, reg prometheus.Registerer) (*reloader, error) {
	if s.source == nil {
		return nil, nil
	}
	m, err := newReloadMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &reloader{path: s.source.path, level: s.source.level, m: m, started: s.source.file, live: s.source.file,
		s: s, users: users}, nil
}

// close makes later reloads fail, after the one running ends: the parts
// are about to close.
func (r *reloader) close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// Reload implements viewer.Reloader.
func (a *app) Reload(ctx context.Context) viewer.ReloadResult { return a.reload(ctx) }

// reload reads the config file again and validates it as `check` does. An
// invalid file changes nothing and the result lists every problem with its
// key. A valid one is applied in place, part by part: cameras, recorder,
// alarm intake, incident engine, then the web server (users, tokens,
// camera places, map) and the warm-up and log level. Keys that cannot
// change while running are named in NeedsRestart and keep their old
// values. When a part fails, the parts before it have the new config and
// the ones after it the old; the next reload applies the whole file again.
//
// ctx is the caller's; a reload runs to its end once begun (parts applied
// half would disagree), so it is not watched.
func (a *app) reload(_ context.Context) reloadResult {
	r := a.reloads
	res := reloadResult{Result: viewer.ReloadInvalid, Changes: reloadChanges{}}
	if a.cluster != nil {
		res.Node = a.cluster.Node()
	}
	if r == nil {
		res.Errors = []string{"no config file to reload: skywatch demo runs on built-in settings"}
		return res
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	if r.closed {
		res.Result, res.Errors = viewer.ReloadFailed, []string{"shutting down"}
		return res
	}
	fc, s, errs := readConfig(r.path, a.logger)
	if len(errs) > 0 {
		return a.refused(r, res, start, errs)
	}
	if err := checkCertificate(r.started, fc); err != nil {
		// A renewal half written: nothing is applied, as for any invalid
		// file.
		return a.refused(r, res, start, []string{err.Error()})
	}
	res.NeedsRestart = restartKeys(r.started, fc)
	changes, err := a.applyConfig(r, fc, s)
	res.Changes, res.Summary = changes, changes.summary()
	took := time.Since(start)
	if err != nil {
		res.Result, res.Errors = viewer.ReloadFailed, []string{err.Error()}
		r.m.record(res.Result, start)
		a.logger.Error("config reload failed part way; reload again once fixed", "config", r.path, "error", err,
			"changes", res.Summary, "took", took.Round(time.Millisecond))
		return res
	}
	res.Result, res.Applied = viewer.ReloadApplied, true
	r.m.record(res.Result, start)
	attrs := []any{"config", r.path, "changes", res.Summary, "took", took.Round(time.Millisecond)}
	if len(res.NeedsRestart) > 0 {
		attrs = append(attrs, "needs_restart", strings.Join(res.NeedsRestart, ","))
	}
	a.logger.Info("config reloaded", attrs...)
	return res
}

// refused reports a file that is not valid: nothing was applied.
func (a *app) refused(r *reloader, res reloadResult, start time.Time, errs []string) reloadResult {
	res.Result, res.Errors = viewer.ReloadInvalid, errs
	res.Summary = fmt.Sprintf("%s is not valid; the running config is kept", r.path)
	r.m.record(res.Result, start)
	a.logger.Error("config reload: the file is not valid; the running config is kept", "config", r.path,
		"errors", strings.Join(errs, "; "))
	return res
}

// checkCertificate reads the TLS files again when they are the ones the
// server started with (a reload serves what they hold now).
func checkCertificate(started, fc *fileConfig) error {
	if fc.HTTP.TLSCert == "" || fc.HTTP.TLSCert != started.HTTP.TLSCert || fc.HTTP.TLSKey != started.HTTP.TLSKey {
		return nil
	}
	if _, err := tls.LoadX509KeyPair(fc.HTTP.TLSCert, fc.HTTP.TLSKey); err != nil {
		return fmt.Errorf("http.tls_cert: %w", err)
	}
	return nil
}

// readConfig loads and validates the file as `check` does; on failure it
// returns every problem, each with its key.
func readConfig(path string, logger *slog.Logger) (*fileConfig, *settings, []string) {
	fc, err := loadConfig(path)
	if err != nil {
		return nil, nil, []string{err.Error()}
	}
	s, err := buildSettings(fc)
	if err == nil {
		var warnings []string
		warnings, err = checkRecordings(s)
		for _, w := range warnings {
			logger.Warn("config reload: " + w)
		}
	}
	if err != nil {
		var out []string
		for _, e := range prefixErrors("", err) {
			out = append(out, e.Error())
		}
		return nil, nil, out
	}
	clusterVideoSettings(s)
	return fc, s, nil
}

// applyConfig applies the live parts of fc (settings s) in order and
// returns what changed.
func (a *app) applyConfig(r *reloader, fc *fileConfig, s *settings) (reloadChanges, error) {
	old, prev := r.s, r.live
	var ch reloadChanges
	next := *old

	// Cameras: the manager's settings (timeouts, queue) need a restart.
	next.ingest.Cameras = s.ingest.Cameras
	next.recorder.Cameras = s.recorder.Cameras
	if old.recorder.Path == "" && next.recorder.Recording() {
		// Nothing recorded at start and no recordings.path to record
		// to: recording starts at the next start (restartKeys names
		// recordings.path).
		next.recorder.Cameras = old.recorder.Cameras
	}
	if a.video != nil {
		a.video.setPinned(pinnedCameras(next.ingest, next.recorder))
	}
	cc, err := a.cameras.Apply(next.ingest)
	if err != nil {
		return ch, fmt.Errorf("cameras: %w", err)
	}
	ch.Cameras = cameraChanges(cc.Added, cc.Changed, cc.Removed, prev.Cameras, fc.Cameras)
	if err := a.recorder.Apply(next.recorder); err != nil {
		return ch, fmt.Errorf("recordings: %w", err)
	}
	ch.Recording = nonEmpty(diffByID(recorded(old.recorder.Cameras), recorded(next.recorder.Cameras),
		func(c recorder.CameraConfig) string { return c.ID }))
	if a.evidence == nil && next.recorder.Recording() {
		a.evidence = newIncidentEvidence(a.recorder, a.engine, a.logger.With("component", "evidence"))
		a.evidence.start()
	}

	// Alarms: mqtt, dedup_window and the limits need a restart.
	next.alarms.Models, next.alarms.Devices, next.alarms.Units = s.alarms.Models, s.alarms.Devices, s.alarms.Units
	next.alarms.Areas, next.alarms.Routing = s.alarms.Areas, s.alarms.Routing
	next.sites = s.sites
	dc, err := a.intake.Apply(next.alarms)
	if err != nil {
		return ch, fmt.Errorf("alarm devices: %w", err)
	}
	// Disconnected holds devices and units alike (MQTT client ids).
	units := map[string]bool{}
	for _, u := range slices.Concat(prev.Units, fc.Units) {
		units[u.ID] = true
	}
	devGone, unitsGone := splitBy(dc.Disconnected, func(id string) bool { return !units[id] })
	ch.Devices = nonEmpty(idChanges{Added: dc.Added, Changed: dc.Changed, Removed: dc.Removed, Disconnected: devGone})
	ch.Units = nonEmpty(idChanges{Added: dc.UnitsAdded, Changed: dc.UnitsChanged, Removed: dc.UnitsRemoved, Disconnected: unitsGone})
	ch.Models = nonEmpty(diffByID(prev.Models, fc.Models, func(m alarms.ModelConfig) string { return m.Name }))
	ch.Areas = nonEmpty(diffByID(prev.Areas, fc.Areas, func(a alarms.AreaConfig) string { return a.ID }))
	ch.Routing = !reflect.DeepEqual(prev.Routing, fc.Routing)
	if err := a.engine.Apply(next.alarms, next.sites); err != nil {
		return ch, fmt.Errorf("incident engine: %w", err)
	}

	// The web server: users, tokens, camera places, map.
	userDiff := diffByID(prev.Users, fc.Users, func(u accounts.UserConfig) string { return strings.ToLower(u.Username) })
	dir := r.users
	if !userDiff.empty() {
		if dir, err = accounts.NewDirectory(s.users); err != nil {
			return ch, fmt.Errorf("users: %w", err)
		}
	}
	next.users, next.tokens, next.places = s.users, s.tokens, s.places
	next.viewer.MapTileURL = s.viewer.MapTileURL
	lr, err := a.web.Apply(viewer.Live{Accounts: dir, Tokens: next.tokens, CameraPlaces: next.places,
		MapTileURL: next.viewer.MapTileURL, EndUnits: dc.UnitsRevoked})
	if err != nil {
		return ch, fmt.Errorf("web server: %w", err)
	}
	r.users = dir
	if !userDiff.empty() || lr.Sessions > 0 {
		ch.Users = &userChanges{idChanges: userDiff, LoggedOut: lr.Users, Sessions: lr.Sessions}
	}
	ch.VideoSessions = lr.VideoSessions
	ch.Tokens = nonEmpty(diffByID(prev.Tokens, fc.Tokens, func(t accounts.TokenConfig) string { return strings.ToLower(t.Name) }))
	ch.Map = prev.Map != fc.Map
	if fc.HTTP.TLSCert == r.started.HTTP.TLSCert && fc.HTTP.TLSKey == r.started.HTTP.TLSKey {
		// Renewed certificate files are read again; other files need a
		// restart (restartKeys names them).
		if ch.TLSCertificate, err = a.web.ReloadCertificate(); err != nil {
			return ch, err
		}
	}

	// The warm-up of incidents' cameras and the log level.
	if s.warm != old.warm {
		ch.WarmOnAlarm = s.warm.String()
		next.warm = s.warm
		switch {
		case a.warmer != nil:
			a.warmer.hold.Store(int64(s.warm))
		case s.warm > 0:
			a.warmer = newIncidentWarmer(a.warmHolder(), s.warm, a.logger.With("component", "warm"))
			a.warmer.start(a.engine)
		}
	}
	if level, _ := parseLevel(fc.Log.Level); level != r.level.Level() { // buildSettings checked it
		r.level.Set(level)
		ch.LogLevel = level.String()
		next.log.Level = fc.Log.Level
	}
	r.s, r.live = &next, fc
	return ch, nil
}

// recorded are the cameras that record (always or for alarms).
func recorded(cams []recorder.CameraConfig) []recorder.CameraConfig {
	var out []recorder.CameraConfig
	for _, c := range cams {
		if c.Record != "" && c.Record != recorder.RecordOff {
			out = append(out, c)
		}
	}
	return out
}

// restartKeys names each key whose value differs between the file the
// process started with and fc, outside the sections a reload applies
// (cameras, devices, models, units, areas, routing, users, tokens, map,
// log.level, ingest.warm_on_alarm). The names are the file's ("http.address",
// "mqtt.auth.cache_file"); values are never shown (some are secrets).
func restartKeys(started, fc *fileConfig) []string {
	var out []string
	changedKeys("", reflect.ValueOf(*started), reflect.ValueOf(*fc), &out)
	return out
}

// liveKeys are the keys a reload applies.
var liveKeys = map[string]bool{
	"cameras": true, "devices": true, "models": true, "units": true, "areas": true, "routing": true,
	"users": true, "tokens": true, "map": true, "log.level": true, "ingest.warm_on_alarm": true,
}

// changedKeys appends the keys under prefix whose values differ between a
// and b, walking structs by their yaml names.
func changedKeys(prefix string, a, b reflect.Value, out *[]string) {
	if liveKeys[prefix] {
		return
	}
	if a.Kind() == reflect.Pointer && !a.IsNil() && !b.IsNil() && a.Elem().Kind() == reflect.Struct {
		a, b = a.Elem(), b.Elem()
	}
	if a.Kind() != reflect.Struct || a.Type() == reflect.TypeFor[time.Time]() {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, prefix)
		}
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		key := prefix
		switch {
		case name == "-":
			continue
		case strings.Contains(opts, "inline"):
		case name == "":
			key = joinKey(prefix, strings.ToLower(f.Name))
		default:
			key = joinKey(prefix, name)
		}
		changedKeys(key, a.Field(i), b.Field(i), out)
	}
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
