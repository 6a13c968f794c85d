package alarms

import "time"

// Defaults of BrokerLimits.
const (
	DefaultConnectTimeout           = 10 * time.Second
	DefaultMaxConnections           = 20000
	DefaultMaxConnectionsPerAddress = 1000
	DefaultReservedFDs              = 512
	DefaultMaxSubscriptions         = 8
	DefaultMaxEventPayload          = 16 << 10
	DefaultMaxHeartbeatPayload      = 512
	DefaultMaxStatePayload          = 64
	DefaultMaxPosPayload            = 1 << 10
	DefaultMaxReplyPayload          = 4 << 10
)

// BrokerLimits bounds what a peer of the embedded broker can make grow. Its
// keys sit directly under mqtt. Zero values take the defaults.
type BrokerLimits struct {
	// ConnectTimeout closes a connection that has not sent its CONNECT
	// (TLS handshake included) this long after it was accepted. It defaults
	// to 10 s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxConnections caps the open connections of all listeners, those
	// that have not sent CONNECT yet included. It defaults to 20,000; at
	// start it is lowered, with a warning, to leave ReservedFDs of the
	// process's file limit to the rest of the server.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps the open connections from one source
	// address. It defaults to 1,000: devices on a carrier's mobile network
	// often share a few NAT addresses, and a device refused here cannot
	// raise its alarm; the CONNECT timeout bounds what one address holds
	// without credentials.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// ReservedFDs is how many of the process's file descriptors MQTT
	// connections leave to HTTP, WebRTC, RTSP and the store. It defaults
	// to 512.
	ReservedFDs int `yaml:"reserved_fds"`
	// MaxSubscriptions caps the subscriptions of one client (a device or
	// unit needs one or two). It defaults to 8.
	MaxSubscriptions int `yaml:"max_subscriptions_per_client"`
	// MaxPayload caps payload sizes by topic kind.
	MaxPayload PayloadLimits `yaml:"max_payload"`
}

// PayloadLimits caps the payload of a published message, in bytes, by
// topic kind. A device topic of another kind takes the event limit.
type PayloadLimits struct {
	// Event defaults to 16 KiB.
	Event int `yaml:"event"`
	// Heartbeat (hb) defaults to 512 bytes.
	Heartbeat int `yaml:"hb"`
	// State is also the only retained payload. It defaults to 64 bytes.
	State int `yaml:"state"`
	// Pos, a unit's position report, defaults to 1 KiB.
	Pos int `yaml:"pos"`
	// Reply, a unit's reply, defaults to 4 KiB.
	Reply int `yaml:"reply"`
}

func (l *BrokerLimits) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if l.ConnectTimeout == 0 {
		l.ConnectTimeout = DefaultConnectTimeout
	}
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.MaxConnectionsPerAddress, DefaultMaxConnectionsPerAddress)
	def(&l.ReservedFDs, DefaultReservedFDs)
	def(&l.MaxSubscriptions, DefaultMaxSubscriptions)
	p := &l.MaxPayload
	def(&p.Event, DefaultMaxEventPayload)
	def(&p.Heartbeat, DefaultMaxHeartbeatPayload)
	def(&p.State, DefaultMaxStatePayload)
	def(&p.Pos, DefaultMaxPosPayload)
	def(&p.Reply, DefaultMaxReplyPayload)
}

// validate checks the limits; add names each key under mqtt.
func (l *BrokerLimits) validate(add func(key, format string, args ...any)) {
	if l.ConnectTimeout < 0 {
		add("mqtt.connect_timeout", "must not be negative")
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"max_connections", l.MaxConnections}, {"max_connections_per_address", l.MaxConnectionsPerAddress},
		{"reserved_fds", l.ReservedFDs}, {"max_subscriptions_per_client", l.MaxSubscriptions}} {
		if f.v < 0 {
			add("mqtt."+f.key, "must not be negative")
		}
	}
	if l.MaxConnectionsPerAddress > l.MaxConnections {
		add("mqtt.max_connections_per_address", "%d exceeds mqtt.max_connections (%d)",
			l.MaxConnectionsPerAddress, l.MaxConnections)
	}
	p := l.MaxPayload
	for _, f := range []struct {
		key string
		v   int
	}{{"event", p.Event}, {"hb", p.Heartbeat}, {"state", p.State}, {"pos", p.Pos}, {"reply", p.Reply}} {
		switch {
		case f.v < 0:
			add("mqtt.max_payload."+f.key, "must not be negative")
		case f.v > maxPacket:
			add("mqtt.max_payload."+f.key, "%d exceeds the broker's packet limit (%d)", f.v, maxPacket)
		}
	}
}

// payloadLimit is the payload cap of a topic.
func (t topics) payloadLimit(p PayloadLimits, topic string) int {
	if _, kind, ok := t.deviceTopic(topic); ok {
		switch kind {
		case kindHeartbeat:
			return p.Heartbeat
		case kindState:
			return p.State
		}
		return p.Event
	}
	if _, kind, ok := t.unitTopic(topic); ok && kind == kindPos {
		return p.Pos
	}
	return p.Reply
}

// retainable reports whether a device may retain a message on topic: only
// its state (online/offline, its last will).
func (t topics) retainable(topic string) bool {
	_, kind, ok := t.deviceTopic(topic)
	return ok && kind == kindState
}

// isEvent reports whether topic is a device's event topic.
func (t topics) isEvent(topic string) bool {
	_, kind, ok := t.deviceTopic(topic)
	return ok && kind == kindEvent
}
