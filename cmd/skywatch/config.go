package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/recorder"
)

// fileConfig is the config file as written by an operator. It is mapped onto
// each package's own config struct, which owns defaults and validation.
type fileConfig struct {
	Log     logConfig      `yaml:"log"`
	HTTP    httpConfig     `yaml:"http"`
	WebRTC  webrtcConfig   `yaml:"webrtc"`
	Ingest  ingestConfig   `yaml:"ingest"`
	Cameras []cameraConfig `yaml:"cameras"`

	MQTT    alarms.MQTTConfig     `yaml:"mqtt"`
	Alarms  alarmsConfig          `yaml:"alarms"`
	Store   storeConfig           `yaml:"store"`
	Models  []alarms.ModelConfig  `yaml:"models"`
	Devices []alarms.DeviceConfig `yaml:"devices"`
	Units   []alarms.UnitConfig   `yaml:"units"`
	Areas   []alarms.AreaConfig   `yaml:"areas"`
	Routing alarms.RoutingConfig  `yaml:"routing"`

	Users []accounts.UserConfig `yaml:"users"`
	// Tokens are API tokens for programs: WHEP players, video walls.
	Tokens []accounts.TokenConfig `yaml:"tokens"`
	Map    mapConfig              `yaml:"map"`

	Recordings recorder.Config         `yaml:"recordings"`
	Evidence   recorder.EvidenceConfig `yaml:"evidence"`

	// Cluster makes this server one node of several sharing Redis and an
	// external broker; nil (no cluster: section) runs one node as before.
	Cluster *cluster.Config `yaml:"cluster"`
}

// mapConfig is the console map's optional on-premises tile server.
type mapConfig struct {
	TileURL string `yaml:"tile_url"`
}

type alarmsConfig struct {
	DedupWindow time.Duration `yaml:"dedup_window"`
	// The bounds of one device: store_hold, device_rate, device_burst,
	// rejected_per_device, rejected_max.
	alarms.Limits `yaml:",inline"`
}

// storeConfig chooses the alarm store: Redis when redis_url is set, else
// the embedded file at path.
type storeConfig struct {
	RedisURL       string        `yaml:"redis_url"`
	RedisKeyPrefix string        `yaml:"redis_key_prefix"`
	RedisTimeout   time.Duration `yaml:"redis_timeout"`
	// RedisDurability is normal (warn about what Redis's settings can
	// lose) or strict (acknowledge an alarm only once on Redis's disk).
	RedisDurability string `yaml:"redis_durability"`
	// EngineCommandsMax and EngineFeedMax bound the incident engine's
	// command stream and feed in Redis (cluster mode).
	EngineCommandsMax int64  `yaml:"engine_commands_max"`
	EngineFeedMax     int64  `yaml:"engine_feed_max"`
	Path              string `yaml:"path"`
	// RecordsDir holds the audit log and operators' preferences when the
	// store is the embedded file; with Redis they are kept in Redis.
	RecordsDir string `yaml:"records_dir"`
	// ControlSocket is the unix socket through which `skywatch backup`
	// asks the running server for a backup of the embedded store; "off"
	// for none. It defaults to skywatch.sock beside path.
	ControlSocket string `yaml:"control_socket"`
}

type logConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

type httpConfig struct {
	Address     string        `yaml:"address"`
	TLSCert     string        `yaml:"tls_cert"`
	TLSKey      string        `yaml:"tls_key"`
	SessionIdle time.Duration `yaml:"session_idle"`
	SessionMax  time.Duration `yaml:"session_max"`
	// Login lockout and the audit budget of requests without a session.
	LoginFailures      int           `yaml:"login_failures"`
	LoginLockout       time.Duration `yaml:"login_lockout"`
	AuditUnauthPerAddr int           `yaml:"audit_unauthenticated_per_address"`
	AuditUnauthTotal   int           `yaml:"audit_unauthenticated_total"`
	// Recorded MP4s (playback, exports, clips) sent at once per user and
	// in all.
	ExportsPerUser int `yaml:"exports_per_user"`
	ExportsTotal   int `yaml:"exports_total"`
	// API tokens: how many (configured and made in the console), and how
	// often a token's reads are written to the audit log.
	MaxTokens          int           `yaml:"max_tokens"`
	TokenAuditInterval time.Duration `yaml:"token_audit_interval"`
	// Go's profiles under /debug/pprof/ for admins; default on.
	Pprof *bool `yaml:"pprof"`
	// Load balancers whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

type webrtcConfig struct {
	UDPAddress string   `yaml:"udp_address"`
	TCPAddress string   `yaml:"tcp_address"`
	PublicIPs  []string `yaml:"public_ips"`
	// Video sessions open at once per user and per address.
	SessionsPerUser    int `yaml:"sessions_per_user"`
	SessionsPerAddress int `yaml:"sessions_per_address"`
	// ICE-TCP connections open at once, in all and per address, and how
	// long one may take to begin ICE.
	TCPConnections        int           `yaml:"tcp_connections"`
	TCPConnectionsPerAddr int           `yaml:"tcp_connections_per_address"`
	TCPHandshakeTimeout   time.Duration `yaml:"tcp_handshake_timeout"`
}

type ingestConfig struct {
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	Linger       time.Duration `yaml:"linger"`
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	QueueSize    int           `yaml:"queue_size"`
	// WarmOnAlarm is how long a new incident's cameras are pulled before
	// anyone watches them; nil means defaultWarmOnAlarm, 0 turns it off.
	WarmOnAlarm *time.Duration `yaml:"warm_on_alarm"`
}

type cameraConfig struct {
	ID        string  `yaml:"id"`
	Name      string  `yaml:"name"`
	Area      string  `yaml:"area"`
	Lat       float64 `yaml:"lat"`
	Lon       float64 `yaml:"lon"`
	URL       string  `yaml:"url"`
	SubURL    string  `yaml:"sub_url"`
	Vendor    string  `yaml:"vendor"`
	Host      string  `yaml:"host"`
	Port      int     `yaml:"port"`
	Channel   int     `yaml:"channel"`
	Stream    string  `yaml:"stream"`
	Path      string  `yaml:"path"`
	Username  string  `yaml:"username"`
	Password  string  `yaml:"password"`
	Transport string  `yaml:"transport"`
	Mode      string  `yaml:"mode"`
	// Record is off (default), always or alarms; RecordStream main
	// (default) or sub.
	Record       string `yaml:"record"`
	RecordStream string `yaml:"record_stream"`
}

// loadConfig reads a config file strictly: an unknown key is an error.
// Environment variables then override secrets.
func loadConfig(path string) (*fileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.applyEnv(os.LookupEnv)
	return cfg, nil
}

func parseConfig(data []byte) (*fileConfig, error) {
	var cfg fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &cfg, nil
}

// applyEnv lets secrets stay out of the file: SKYWATCH_CAMERA_<ID>_PASSWORD
// (and _USERNAME) override a camera's credentials. The ID is upper-cased and
// every character other than a letter or digit becomes an underscore.
//
// SKYWATCH_REDIS_URL and SKYWATCH_MQTT_PASSWORD override the store's Redis
// URL and the intake's password at an external broker.
// SKYWATCH_MQTT_AUTH_KEY (64 hex digits) is the key of the verified-credential
// cache, in place of mqtt.auth.cache_key_file.
func (c *fileConfig) applyEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup("SKYWATCH_REDIS_URL"); ok {
		c.Store.RedisURL = v
	}
	if v, ok := lookup("SKYWATCH_MQTT_PASSWORD"); ok {
		c.MQTT.Password = v
	}
	if v, ok := lookup("SKYWATCH_MQTT_AUTH_KEY"); ok {
		c.MQTT.Auth.CacheKey = v
	}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		prefix := "SKYWATCH_CAMERA_" + envName(cam.ID) + "_"
		if v, ok := lookup(prefix + "USERNAME"); ok {
			cam.Username = v
		}
		if v, ok := lookup(prefix + "PASSWORD"); ok {
			cam.Password = v
		}
	}
}

func envName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		default:
			return '_'
		}
	}, id)
}
