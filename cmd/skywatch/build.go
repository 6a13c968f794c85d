package main

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/recorder"
	"github.com/skywatch/skywatch/viewer"
)

// settings are the package configs built from a config file.
type settings struct {
	log    logConfig
	ingest ingest.Config
	// warm is how long a new incident's cameras are held pulled (0: not).
	warm   time.Duration
	viewer viewer.Config
	alarms alarms.Config
	store  storeSettings
	// sites are where the cameras are, for linking them to incidents.
	sites []alarms.CameraSite
	// places are the cameras' areas and positions, for the console.
	places []viewer.CameraPlace
	users  []accounts.UserConfig
	tokens []accounts.Token
	// recorder is the recordings and evidence config, with each camera's
	// record settings.
	recorder recorder.Config
	// cluster is this node's cluster settings, defaults filled in; nil
	// without a cluster: section.
	cluster *cluster.Config
	// source is the file these settings came from, for reloads; nil for
	// the demo's.
	source *configSource
}

// storeSettings say which alarm store to open.
type storeSettings struct {
	redis redisstore.Config // used when redis.URL is set
	path  string            // the embedded store's file otherwise
	// records is the audit log's and preferences' directory, beside path
	// unless the config names one (unused with Redis).
	records string
	// control is the control socket's path (control.go), beside path
	// unless the config names one; "" when off or with Redis.
	control string
}

// defaultStorePath is the embedded store's file when the config names none.
const defaultStorePath = "skywatch.db"

// defaultRecordsDir is the audit log's directory, beside the store's file.
const defaultRecordsDir = "skywatch-records"

// defaultControlSocket is the control socket, beside the store's file.
const defaultControlSocket = "skywatch.sock"

// defaultAuthCacheFile keeps the verified device credentials, beside the
// store's file.
const defaultAuthCacheFile = "skywatch-mqtt-auth.json"

// authCacheFile is mqtt.auth.cache_file: by default beside the store's
// file; with Redis (no data directory of ours) and for "off", "" (memory
// only).
func authCacheFile(fc *fileConfig) string {
	switch f := fc.MQTT.Auth.CacheFile; {
	case f == "off":
		return ""
	case f == "" && fc.Store.RedisURL != "":
		return ""
	case f == "":
		return filepath.Join(filepath.Dir(cmp.Or(fc.Store.Path, defaultStorePath)), defaultAuthCacheFile)
	default:
		return f
	}
}

// buildSettings maps the file onto each package's config and validates them
// all, so that `check` can print every problem at once, each with its key.
func buildSettings(fc *fileConfig) (*settings, error) {
	var errs []error
	if _, err := newLogger(fc.Log, nil); err != nil {
		errs = append(errs, err)
	}

	ic := ingest.Config{
		ReadTimeout:  fc.Ingest.ReadTimeout,
		Linger:       fc.Ingest.Linger,
		ReadyTimeout: fc.Ingest.ReadyTimeout,
		QueueSize:    fc.Ingest.QueueSize,
	}
	for i, cam := range fc.Cameras {
		cc, err := cameraSettings(cam)
		if err != nil {
			errs = append(errs, fmt.Errorf("cameras[%d].%w", i, err))
		}
		ic.Cameras = append(ic.Cameras, cc)
	}
	if err := ic.Validate(); err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}
	warm := defaultWarmOnAlarm
	if fc.Ingest.WarmOnAlarm != nil {
		warm = *fc.Ingest.WarmOnAlarm
	}
	if warm < 0 {
		errs = append(errs, errors.New("ingest.warm_on_alarm: must not be negative (0 turns the warm-up off)"))
	}

	vc := viewer.DefaultConfig()
	if fc.HTTP.Address != "" {
		vc.HTTPAddress = fc.HTTP.Address
	}
	if fc.WebRTC.UDPAddress != "" {
		vc.UDPAddress = fc.WebRTC.UDPAddress
	}
	switch fc.WebRTC.TCPAddress {
	case "":
	case "off":
		vc.TCPAddress = ""
	default:
		vc.TCPAddress = fc.WebRTC.TCPAddress
	}
	vc.PublicIPs = fc.WebRTC.PublicIPs
	vc.TLSCertFile, vc.TLSKeyFile = fc.HTTP.TLSCert, fc.HTTP.TLSKey
	vc.SessionIdle, vc.SessionMax = fc.HTTP.SessionIdle, fc.HTTP.SessionMax
	vc.LoginFailures, vc.LoginLockout = fc.HTTP.LoginFailures, fc.HTTP.LoginLockout
	vc.AuditUnauthPerAddr, vc.AuditUnauthTotal = fc.HTTP.AuditUnauthPerAddr, fc.HTTP.AuditUnauthTotal
	vc.VideoSessionsPerUser, vc.VideoSessionsPerAddr = fc.WebRTC.SessionsPerUser, fc.WebRTC.SessionsPerAddress
	vc.ExportsPerUser, vc.ExportsTotal = fc.HTTP.ExportsPerUser, fc.HTTP.ExportsTotal
	vc.TCPConnections, vc.TCPConnectionsPerAddr = fc.WebRTC.TCPConnections, fc.WebRTC.TCPConnectionsPerAddr
	vc.TCPHandshakeTimeout = fc.WebRTC.TCPHandshakeTimeout
	vc.MapTileURL = fc.Map.TileURL
	vc.TrustedProxies = fc.HTTP.TrustedProxies
	vc.MaxTokens, vc.TokenAuditInterval = fc.HTTP.MaxTokens, fc.HTTP.TokenAuditInterval
	if fc.HTTP.Pprof != nil {
		vc.Pprof = *fc.HTTP.Pprof
	}
	if err := vc.Validate(); err != nil {
		errs = append(errs, err)
	}
	mqtt := fc.MQTT
	mqtt.Auth.CacheFile = authCacheFile(fc)
	ac := alarms.Config{
		MQTT:        mqtt,
		DedupWindow: fc.Alarms.DedupWindow,
		Models:      fc.Models,
		Devices:     fc.Devices,
		Units:       fc.Units,
		Areas:       fc.Areas,
		Routing:     fc.Routing,
		Limits:      fc.Alarms.Limits,
	}
	if err := ac.Validate(); err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}

	ss := storeSettings{path: fc.Store.Path}
	if fc.Store.RedisURL != "" {
		if fc.Store.Path != "" {
			errs = append(errs, errors.New("store.path: give either redis_url or path, not both"))
		}
		ss.redis = redisstore.Config{URL: fc.Store.RedisURL, KeyPrefix: fc.Store.RedisKeyPrefix, Timeout: fc.Store.RedisTimeout,
			Durability: fc.Store.RedisDurability, EngineCommandsMax: fc.Store.EngineCommandsMax, EngineFeedMax: fc.Store.EngineFeedMax}
		if err := ss.redis.Validate(); err != nil {
			errs = append(errs, prefixErrors("", err)...)
		}
	} else {
		if fc.Store.RedisKeyPrefix != "" || fc.Store.RedisTimeout != 0 || fc.Store.RedisDurability != "" {
			errs = append(errs, errors.New("store.redis_url: redis_key_prefix, redis_timeout and redis_durability need redis_url"))
		}
		if ss.path == "" {
			ss.path = defaultStorePath
		}
		ss.records = fc.Store.RecordsDir
		if ss.records == "" {
			ss.records = filepath.Join(filepath.Dir(ss.path), defaultRecordsDir)
		}
		switch ss.control = fc.Store.ControlSocket; ss.control {
		case "off":
			ss.control = ""
		case "":
			ss.control = filepath.Join(filepath.Dir(ss.path), defaultControlSocket)
		}
	}
	if fc.Store.RedisURL != "" && fc.Store.RecordsDir != "" {
		errs = append(errs, errors.New("store.records_dir: with redis_url the audit log and preferences are kept in Redis"))
	}
	if fc.Store.RedisURL != "" && fc.Store.ControlSocket != "" && fc.Store.ControlSocket != "off" {
		errs = append(errs, errors.New("store.control_socket: it serves backups of the embedded store; with redis_url back up Redis instead (see skywatch backup)"))
	}

	if len(fc.Users) == 0 {
		errs = append(errs, errors.New("users: no operator accounts: add at least one (skywatch passwd makes its password_hash)"))
	}
	var areaKnown func(string) bool
	if len(fc.Areas) > 0 {
		known := map[string]bool{}
		for _, a := range fc.Areas {
			known[a.ID] = true
		}
		areaKnown = func(id string) bool { return known[id] }
	}
	if err := accounts.ValidateUsers(fc.Users, areaKnown); err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}

	cameraKnown := map[string]bool{}
	for _, cam := range fc.Cameras {
		cameraKnown[cam.ID] = true
	}
	if err := accounts.ValidateTokens(fc.Tokens, areaKnown, func(id string) bool { return cameraKnown[id] }); err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}
	if most := cmp.Or(fc.HTTP.MaxTokens, viewer.DefaultMaxTokens); len(fc.Tokens) > most {
		errs = append(errs, fmt.Errorf("tokens: %d tokens, more than http.max_tokens (%d)", len(fc.Tokens), most))
	}
	var tokens []accounts.Token
	for _, tc := range fc.Tokens {
		tokens = append(tokens, tc.Token())
	}

	var sites []alarms.CameraSite
	var places []viewer.CameraPlace
	areas := map[string]bool{}
	for _, a := range fc.Areas {
		areas[a.ID] = true
	}
	for i, cam := range fc.Cameras {
		if cam.Area != "" && len(areas) > 0 && !areas[cam.Area] {
			errs = append(errs, fmt.Errorf("cameras[%d].area: unknown area %q", i, cam.Area))
		}
		if cam.Lat < -90 || cam.Lat > 90 || cam.Lon < -180 || cam.Lon > 180 {
			errs = append(errs, fmt.Errorf("cameras[%d].lat: position %g,%g is not a latitude and longitude", i, cam.Lat, cam.Lon))
		}
		if cam.Lat != 0 || cam.Lon != 0 {
			sites = append(sites, alarms.CameraSite{ID: cam.ID, Area: cam.Area, Lat: cam.Lat, Lon: cam.Lon})
		}
		places = append(places, viewer.CameraPlace{ID: cam.ID, Area: cam.Area, Lat: cam.Lat, Lon: cam.Lon})
	}

	cameraIDs := map[string]bool{}
	for _, cam := range fc.Cameras {
		cameraIDs[cam.ID] = true
	}
	for i, d := range fc.Devices {
		for j, id := range d.Cameras {
			if !cameraIDs[id] {
				errs = append(errs, fmt.Errorf("devices[%d].cameras[%d]: unknown camera %q", i, j, id))
			}
		}
	}

	rc := fc.Recordings
	rc.Evidence = fc.Evidence
	for _, cam := range fc.Cameras {
		rc.Cameras = append(rc.Cameras, recorder.CameraConfig{ID: cam.ID, Record: cam.Record, Stream: cam.RecordStream})
	}
	rc.SetDefaults()
	if err := rc.Validate(); err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}

	cc, err := clusterSettings(fc)
	if err != nil {
		errs = append(errs, prefixErrors("", err)...)
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &settings{log: fc.Log, ingest: ic, warm: warm, viewer: vc, alarms: ac, store: ss, sites: sites,
		places: places, users: fc.Users, tokens: tokens, recorder: rc, cluster: cc}, nil
}

// cameraSettings turns one camera entry into ingest's form, building the
// RTSP URLs of its main and sub streams from the vendor profile when no URL
// is given. Errors start with the key inside the entry ("vendor: ...").
func cameraSettings(cam cameraConfig) (ingest.CameraConfig, error) {
	cc := ingest.CameraConfig{
		ID:        cam.ID,
		Name:      cam.Name,
		URL:       cam.URL,
		SubURL:    cam.SubURL,
		Username:  cam.Username,
		Password:  cam.Password,
		Transport: cam.Transport,
		Mode:      cam.Mode,
	}
	if cam.Vendor == "" {
		if cam.Host != "" || cam.Channel != 0 || cam.Stream != "" || cam.Path != "" || cam.Port != 0 {
			return cc, errors.New("vendor: host, port, channel, stream and path need a vendor (or give url instead)")
		}
		return cc, nil
	}
	if cam.URL != "" {
		return cc, errors.New("url: give either url or vendor with host, not both")
	}
	if cam.SubURL != "" {
		return cc, errors.New("sub_url: only with url; a vendor's sub stream is derived from host and channel")
	}
	vendor, err := hardware.ParseVendor(cam.Vendor)
	if err != nil {
		return cc, fmt.Errorf("vendor: %w", err)
	}
	mainEP, subEP, err := hardware.CameraProfile{
		Vendor:   vendor,
		Host:     cam.Host,
		Port:     cam.Port,
		Username: cam.Username,
		Password: cam.Password,
		Channel:  cam.Channel,
		Stream:   hardware.StreamKind(strings.ToLower(cam.Stream)),
		Path:     cam.Path,
	}.Endpoints()
	if err != nil {
		return cc, err
	}
	cc.URL = mainEP.URL.String()
	if subEP != nil {
		cc.SubURL = subEP.URL.String()
	}
	return cc, nil
}

// prefixErrors flattens a joined error into its parts.
func prefixErrors(prefix string, err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixErrors(prefix, e)...)
		}
		return out
	}
	if prefix == "" {
		return []error{err}
	}
	return []error{fmt.Errorf("%s%w", prefix, err)}
}
