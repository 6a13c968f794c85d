package alarms

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Decoder names that Config accepts; hardware provides the decoders.
const (
	DecoderSkywatch    = "skywatch"
	DecoderContactID   = "contactid"
	DecoderZigbee2MQTT = "zigbee2mqtt"
)

// Defaults of Config.
const (
	DefaultAddress     = ":1883"
	DefaultClientID    = "skywatch-intake"
	DefaultTopicPrefix = "skywatch"
	DefaultDedupWindow = 2 * time.Minute
	DefaultHeartbeat   = 60 * time.Second
)

// DefaultSupervision is the supervision window of a model with the given
// heartbeat interval: three heartbeats and 10 s of slack, so that two lost
// heartbeats on a flaky link do not raise a trouble.
func DefaultSupervision(heartbeat time.Duration) time.Duration {
	return 3*heartbeat + 10*time.Second
}

// Config is the alarms section of the configuration. Zero values take the
// defaults.
type Config struct {
	MQTT MQTTConfig `yaml:"mqtt"`
	// DedupWindow is how long an event without a device id is deduplicated
	// by its content. It defaults to 2 minutes.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// Models lists device models. The models "skywatch", "contactid" and
	// "zigbee2mqtt", each using the decoder of its name with the default
	// heartbeat, exist without being listed; listing one overrides it.
	Models []ModelConfig `yaml:"models"`
	// Devices lists the alarm devices; IDs are unique.
	Devices []DeviceConfig `yaml:"devices"`
	// Units lists the patrol units; they report on {prefix}/unit/{id}/pos
	// and /reply and are sent offers on /dispatch.
	Units []UnitConfig `yaml:"units"`
	// Areas is the jurisdiction tree. When it is not empty, every device's
	// and unit's area must be one of its areas.
	Areas []AreaConfig `yaml:"areas"`
	// Routing is the dispatch policy.
	Routing RoutingConfig `yaml:"routing"`
	// Limits bounds what one device can cost.
	Limits Limits `yaml:"limits"`

	// tick is the supervisor's scan period; it defaults to a tenth of the
	// shortest supervision window, between 50 ms and 1 s.
	tick time.Duration
}

// MQTTConfig chooses the broker: the embedded one (URL empty) or an
// external one at URL.
type MQTTConfig struct {
	// URL of an external broker, tcp://host:port or ssl://host:port. When
	// empty, Skywatch runs its embedded broker.
	URL string `yaml:"url"`
	// ClientID is the intake's fixed client id at the external broker, which
	// keeps its persistent session. It defaults to "skywatch-intake".
	ClientID string `yaml:"client_id"`
	// Username and Password authenticate the intake at the external broker.
	Username string `yaml:"username"`
	Password string `yaml:"password"`

	// Address is the embedded broker's TCP address. It defaults to ":1883".
	Address string `yaml:"address"`
	// TLSAddress, with CertFile and KeyFile, adds a TLS listener.
	TLSAddress string `yaml:"tls_address"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	// WSAddress adds a WebSocket listener.
	WSAddress string `yaml:"ws_address"`

	// TopicPrefix is the first level of every topic. It defaults to
	// "skywatch".
	TopicPrefix string `yaml:"topic_prefix"`

	// BrokerLimits bound the embedded broker's peers.
	BrokerLimits `yaml:",inline"`
	// Auth bounds the password checks of devices and units.
	Auth AuthConfig `yaml:"auth"`
}

// Embedded reports whether the embedded broker is used.
func (c *MQTTConfig) Embedded() bool { return c.URL == "" }

// ModelConfig describes a device model.
type ModelConfig struct {
	Name string `yaml:"name"`
	// Decoder decodes the model's event payloads: "skywatch", "contactid" or
	// "zigbee2mqtt". It defaults to Name when that is a decoder's name.
	Decoder string `yaml:"decoder"`
	// Heartbeat is the interval at which the model sends heartbeats. It
	// defaults to 60 s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Supervision is how long a device may stay silent before a supervision
	// trouble is raised. It defaults to 3 × Heartbeat + 10 s.
	Supervision time.Duration `yaml:"supervision"`
}

// DeviceConfig configures one alarm device.
type DeviceConfig struct {
	// ID is the device's id in its topics: letters, digits, '-', '_', '.'.
	ID string `yaml:"id"`
	// Name is shown to operators. It defaults to ID.
	Name string `yaml:"name"`
	// Model names a model. It defaults to "skywatch".
	Model string  `yaml:"model"`
	Area  string  `yaml:"area"`
	Lat   float64 `yaml:"lat"`
	Lon   float64 `yaml:"lon"`
	// Username is the device's MQTT user name at the embedded broker. It
	// defaults to ID.
	Username string `yaml:"username"`
	// PasswordHash is the bcrypt hash of the device's MQTT password.
	PasswordHash string `yaml:"password_hash"`
	// TokenSHA256 is the SHA-256 (64 hex digits) of a random token that the
	// device sends as its MQTT password, in place of PasswordHash: as safe
	// as a password hash for a random 128-bit token, and checked in
	// microseconds instead of tens of milliseconds (`skywatch passwd
	// -token` makes one).
	TokenSHA256 string `yaml:"token_sha256"`
	// Password is a plain password, accepted for the demo and simulated
	// devices only: real deployments set PasswordHash. NewIntake logs a
	// warning when any is set.
	Password string `yaml:"password"`
	// Address is where the device is, for operators and units.
	Address string `yaml:"address"`
	// Cameras lists the IDs of cameras that see the device's place; they
	// are linked to its incidents before the nearest ones.
	Cameras []string `yaml:"cameras"`
}

// UnitConfig configures a patrol unit. At the embedded broker a unit may
// publish only {prefix}/unit/{id}/pos and /reply and subscribe only to
// {prefix}/unit/{id}/dispatch.
type UnitConfig struct {
	ID           string `yaml:"id"`
	Username     string `yaml:"username"` // defaults to ID
	PasswordHash string `yaml:"password_hash"`
	TokenSHA256  string `yaml:"token_sha256"` // as DeviceConfig.TokenSHA256
	Password     string `yaml:"password"`     // demo only, as DeviceConfig.Password
	// Name is shown to operators. It defaults to ID.
	Name string `yaml:"name"`
	// Kind is patrol_car, foot_patrol, volunteer_patrol or grid_manager. It
	// defaults to patrol_car.
	Kind UnitKind `yaml:"kind"`
	// Area is the unit's home area: it is a candidate for incidents in
	// that area first.
	Area string `yaml:"area"`
	// Lat and Lon are the unit's home position, shown until it reports.
	Lat float64 `yaml:"lat"`
	Lon float64 `yaml:"lon"`
	// Silence is how long the unit may go without a position report before
	// it counts as unavailable. It defaults to 2 minutes.
	Silence time.Duration `yaml:"silence"`
}

func (c *Config) setDefaults() {
	m := &c.MQTT
	if m.ClientID == "" {
		m.ClientID = DefaultClientID
	}
	if m.Address == "" {
		m.Address = DefaultAddress
	}
	if m.TopicPrefix == "" {
		m.TopicPrefix = DefaultTopicPrefix
	}
	m.BrokerLimits.setDefaults()
	m.Auth.setDefaults()
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	for i := range c.Models {
		md := &c.Models[i]
		if md.Decoder == "" && knownDecoder(md.Name) {
			md.Decoder = md.Name
		}
		if md.Heartbeat == 0 {
			md.Heartbeat = DefaultHeartbeat
		}
		if md.Supervision == 0 {
			md.Supervision = DefaultSupervision(md.Heartbeat)
		}
	}
	for _, name := range []string{DecoderSkywatch, DecoderContactID, DecoderZigbee2MQTT} {
		if c.model(name) == nil {
			c.Models = append(c.Models, ModelConfig{Name: name, Decoder: name,
				Heartbeat: DefaultHeartbeat, Supervision: DefaultSupervision(DefaultHeartbeat)})
		}
	}
	for i := range c.Devices {
		d := &c.Devices[i]
		if d.Name == "" {
			d.Name = d.ID
		}
		if d.Model == "" {
			d.Model = DecoderSkywatch
		}
		if d.Username == "" {
			d.Username = d.ID
		}
	}
	for i := range c.Units {
		u := &c.Units[i]
		if u.Username == "" {
			u.Username = u.ID
		}
		if u.Name == "" {
			u.Name = u.ID
		}
		if u.Kind == "" {
			u.Kind = UnitPatrolCar
		}
		if u.Silence == 0 {
			u.Silence = DefaultUnitSilence
		}
	}
	c.Routing.setDefaults()
	c.Limits.setDefaults()
	if c.tick == 0 {
		shortest := time.Duration(math.MaxInt64)
		for _, md := range c.Models {
			shortest = min(shortest, md.Supervision)
		}
		c.tick = min(max(shortest/10, 50*time.Millisecond), time.Second)
	}
}

func (c *Config) model(name string) *ModelConfig {
	for i := range c.Models {
		if c.Models[i].Name == name {
			return &c.Models[i]
		}
	}
	return nil
}

func knownDecoder(name string) bool {
	return name == DecoderSkywatch || name == DecoderContactID || name == DecoderZigbee2MQTT
}

// Validate checks the configuration. Zero values are valid (they take the
// defaults). Every message names its key, as in
// `devices[3].model: unknown model "x"`.
func (c *Config) Validate() error {
	cc := *c
	cc.Models = append([]ModelConfig(nil), c.Models...)
	cc.Devices = append([]DeviceConfig(nil), c.Devices...)
	cc.Units = append([]UnitConfig(nil), c.Units...)
	cc.setDefaults()
	return cc.validate()
}

func (c *Config) validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	m := &c.MQTT
	if m.URL != "" {
		u, err := url.Parse(m.URL)
		switch {
		case err != nil:
			add("mqtt.url", "not a valid URL")
		case u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "ws" && u.Scheme != "wss":
			add("mqtt.url", "scheme must be tcp, ssl, ws or wss")
		case u.User != nil:
			add("mqtt.url", "must not contain credentials: use mqtt.username and mqtt.password")
		case u.Host == "":
			add("mqtt.url", "must have a host")
		}
	}
	switch {
	case m.TLSAddress != "" && (m.CertFile == "" || m.KeyFile == ""):
		add("mqtt.tls_address", "needs mqtt.cert_file and mqtt.key_file")
	case m.TLSAddress == "" && (m.CertFile != "" || m.KeyFile != ""):
		add("mqtt.cert_file", "set without mqtt.tls_address")
	}
	if !validTopicLevels(m.TopicPrefix) {
		add("mqtt.topic_prefix", "%q must be non-empty and contain no '+', '#' or empty level", m.TopicPrefix)
	}
	if c.DedupWindow < 0 {
		add("dedup_window", "must not be negative")
	}
	errs = append(errs, c.Limits.validate()...)
	m.BrokerLimits.validate(add)
	if err := m.Auth.validate(); err != nil {
		errs = append(errs, err)
	}

	seenModel := map[string]int{}
	for i, md := range c.Models {
		key := fmt.Sprintf("models[%d]", i)
		if md.Name == "" {
			add(key+".name", "must not be empty")
		} else if j, dup := seenModel[md.Name]; dup {
			add(key+".name", "duplicate %q (also models[%d])", md.Name, j)
		} else {
			seenModel[md.Name] = i
		}
		if !knownDecoder(md.Decoder) {
			add(key+".decoder", "unknown decoder %q: must be skywatch, contactid or zigbee2mqtt", md.Decoder)
		}
		if md.Heartbeat < 0 {
			add(key+".heartbeat", "must not be negative")
		}
		if md.Supervision < 0 {
			add(key+".supervision", "must not be negative")
		} else if md.Supervision > 0 && md.Supervision <= md.Heartbeat {
			add(key+".supervision", "must be longer than the heartbeat interval")
		}
	}

	users := map[string]string{}
	checkUser := func(key, user string) {
		if other, dup := users[user]; dup {
			add(key, "duplicate user name %q (also %s)", user, other)
		} else {
			users[user] = key
		}
	}
	checkSecret := func(key, hash, token, plain string) {
		switch {
		case hash != "" && plain != "":
			add(key+".password", "set together with password_hash: keep only password_hash")
		case token != "" && (hash != "" || plain != ""):
			add(key+".token_sha256", "set together with password_hash or password: keep only one")
		case hash != "":
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				add(key+".password_hash", "not a bcrypt hash")
			}
		case token != "":
			if !validKeyHex(token) {
				add(key+".token_sha256", "must be 64 hex digits (a SHA-256)")
			}
		case plain == "" && m.Embedded():
			add(key+".password_hash", "must be set for the embedded broker (or token_sha256)")
		}
	}
	var tree *AreaTree
	if t, err := NewAreaTree(c.Areas); err != nil {
		errs = append(errs, err)
	} else {
		tree = t
	}
	checkArea := func(key, area string) {
		if tree == nil || tree.Len() == 0 {
			return
		}
		if area == "" {
			add(key, "must be set when areas are configured")
		} else if !tree.Has(area) {
			add(key, "unknown area %q", area)
		}
	}
	if err := c.Routing.validate(); err != nil {
		errs = append(errs, err)
	}
	seenDev := map[string]int{}
	for i, d := range c.Devices {
		key := fmt.Sprintf("devices[%d]", i)
		switch {
		case d.ID == "":
			add(key+".id", "must not be empty")
		case !validID(d.ID):
			add(key+".id", "%q must contain only letters, digits, '-', '_' and '.'", d.ID)
		default:
			if j, dup := seenDev[d.ID]; dup {
				add(key+".id", "duplicate %q (also devices[%d])", d.ID, j)
			} else {
				seenDev[d.ID] = i
			}
		}
		if _, ok := seenModel[d.Model]; !ok {
			add(key+".model", "unknown model %q", d.Model)
		}
		if d.Lat < -90 || d.Lat > 90 {
			add(key+".lat", "must be between -90 and 90")
		}
		if d.Lon < -180 || d.Lon > 180 {
			add(key+".lon", "must be between -180 and 180")
		}
		checkUser(key+".username", d.Username)
		checkSecret(key, d.PasswordHash, d.TokenSHA256, d.Password)
		checkArea(key+".area", d.Area)
		for j, cam := range d.Cameras {
			if cam == "" {
				add(fmt.Sprintf("%s.cameras[%d]", key, j), "must not be empty")
			}
		}
	}
	seenUnit := map[string]int{}
	for i, u := range c.Units {
		key := fmt.Sprintf("units[%d]", i)
		switch {
		case u.ID == "":
			add(key+".id", "must not be empty")
		case !validID(u.ID):
			add(key+".id", "%q must contain only letters, digits, '-', '_' and '.'", u.ID)
		default:
			if j, dup := seenUnit[u.ID]; dup {
				add(key+".id", "duplicate %q (also units[%d])", u.ID, j)
			} else {
				seenUnit[u.ID] = i
			}
		}
		if j, dup := seenDev[u.ID]; dup && m.Embedded() {
			add(key+".id", "%q is also devices[%d].id: at the embedded broker an id is one client id", u.ID, j)
		}
		checkUser(key+".username", u.Username)
		checkSecret(key, u.PasswordHash, u.TokenSHA256, u.Password)
		checkArea(key+".area", u.Area)
		if !u.Kind.valid() {
			add(key+".kind", "%q must be patrol_car, foot_patrol, volunteer_patrol or grid_manager", u.Kind)
		}
		if !validLatLon(u.Lat, u.Lon) {
			add(key+".lat", "[lat, lon] out of range")
		}
		if u.Silence < 0 {
			add(key+".silence", "must not be negative")
		}
	}
	return errors.Join(errs...)
}

// validID reports whether id can be a topic level and a store key.
func validID(id string) bool {
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return id != ""
}

func validTopicLevels(s string) bool {
	if s == "" {
		return false
	}
	level := 0
	for _, r := range s {
		switch r {
		case '+', '#', 0:
			return false
		case '/':
			if level == 0 {
				return false
			}
			level = 0
		default:
			level++
		}
	}
	return level > 0
}
