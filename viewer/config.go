package viewer

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the viewer's configuration. The zero value of a field means its
// default, except TCPAddress (see there).
type Config struct {
	// HTTPAddress is where the page, the API, WHEP, /metrics, /healthz and
	// /readyz listen. It defaults to 127.0.0.1:8080.
	HTTPAddress string

	// UDPAddress is the one UDP address that carries the media of every
	// viewer (ICE UDP mux). With no host (":8189") every interface's
	// address is announced. It defaults to :8189.
	UDPAddress string

	// TCPAddress is the ICE-TCP listener for viewers whose network blocks
	// UDP. Empty turns ICE-TCP off; DefaultConfig sets :8189.
	TCPAddress string

	// TCPConnections and TCPConnectionsPerAddr bound the ICE-TCP
	// connections open at once, in all and from one address; past them a
	// new connection is closed at once. TCPHandshakeTimeout closes a
	// connection that has not begun ICE (its first STUN request) within
	// it. They default to 1,024, 64 and 10 seconds.
	TCPConnections, TCPConnectionsPerAddr int
	TCPHandshakeTimeout                   time.Duration

	// PublicIPs are the addresses viewers reach this server at when it sits
	// behind a 1:1 NAT. They are announced in addition to the local ones, so
	// that viewers on the local network still connect directly.
	PublicIPs []string

	// TLSCertFile and TLSKeyFile (PEM) make the server speak HTTPS only;
	// the session cookie is then Secure. Both or neither.
	TLSCertFile, TLSKeyFile string

	// SessionIdle ends an operator's session after this long without a
	// request (an open console polls, so it counts as use); SessionMax
	// after this long in any case. They default to 30 minutes and 12 hours.
	SessionIdle, SessionMax time.Duration

	// LoginFailures wrong passwords lock an account from one address for
	// a while; one more attempt is allowed each LoginLockout after. Other
	// addresses are not locked. They default to 5 and 5 minutes.
	LoginFailures int
	LoginLockout  time.Duration

	// AuditUnauthPerAddr and AuditUnauthTotal bound the audit records that
	// requests without a session (failed and refused logins) write per
	// minute, from one address and in all; past them the attempts are
	// counted and written as one summary record per address and minute.
	// They default to 10 and 100.
	AuditUnauthPerAddr, AuditUnauthTotal int

	// VideoSessionsPerUser and VideoSessionsPerAddr bound the WHEP sessions
	// open at once for one user and from one address; past them an offer is
	// answered 429. They default to 24 (a wall of 16 tiles, a full screen
	// and an incident's cameras, with room for tiles that reconnect) and 48
	// (two such consoles behind one address).
	VideoSessionsPerUser, VideoSessionsPerAddr int

	// ExportsPerUser and ExportsTotal bound the recorded MP4s (playback,
	// exports, evidence clips) being sent at once for one user and in
	// all; past them a request is answered 429. They default to 4 (a
	// span playing, an incident's clip and a download, with room for a
	// player that re-requests) and 16.
	ExportsPerUser, ExportsTotal int

	// MaxTokens bounds the API tokens, configured and made in the console
	// together; past it an admin cannot make one more. It defaults to 200.
	MaxTokens int

	// TokenAuditInterval is how often an API token's reads of the API (and
	// its refused requests) are written to the audit log: one record per
	// token, kind and interval, with the count of those held back, so
	// that a video wall that polls cannot flood the log. Each video
	// session a token opens is written as a user's is. It defaults to a
	// minute.
	TokenAuditInterval time.Duration
	// Pprof serves Go's profiles under /debug/pprof/ to admins (audited).
	// DefaultConfig turns it on.
	Pprof bool

	// TrustedProxies are the load balancers in front of the server
	// (addresses or CIDR prefixes): from them, the client's address is
	// taken from X-Forwarded-For, for the login limits, the video caps and
	// the audit log. Empty: the connection's address is the client's.
	TrustedProxies []string

	// MapTileURL is an optional template of an on-premises map server's
	// tiles ("https://tiles.local/{z}/{x}/{y}.png"); without it the map
	// draws only the configured areas and positions.
	MapTileURL string
}

// Defaults of Config.
const (
	DefaultHTTPAddress = "127.0.0.1:8080"
	DefaultUDPAddress  = ":8189"
	DefaultTCPAddress  = ":8189"
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour

	DefaultLoginFailures         = 5
	DefaultLoginLockout          = 5 * time.Minute
	DefaultAuditUnauthPerAddr    = 10
	DefaultAuditUnauthTotal      = 100
	DefaultVideoSessionsPerUser  = 24
	DefaultVideoSessionsPerAddr  = 48
	DefaultExportsPerUser        = 4
	DefaultExportsTotal          = 16
	DefaultTCPConnections        = 1024
	DefaultTCPConnectionsPerAddr = 64
	DefaultTCPHandshakeTimeout   = 10 * time.Second
	DefaultMaxTokens             = 200
	DefaultTokenAuditInterval    = time.Minute
)

// DefaultConfig returns the configuration used when the file says nothing.
func DefaultConfig() Config {
	return Config{
		HTTPAddress: DefaultHTTPAddress,
		UDPAddress:  DefaultUDPAddress,
		TCPAddress:  DefaultTCPAddress,
		Pprof:       true,
	}
}

// withDefaults fills empty fields that have a default. TCPAddress is left
// alone: empty means off.
func (c Config) withDefaults() Config {
	if c.HTTPAddress == "" {
		c.HTTPAddress = DefaultHTTPAddress
	}
	if c.UDPAddress == "" {
		c.UDPAddress = DefaultUDPAddress
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = DefaultSessionIdle
	}
	if c.SessionMax == 0 {
		c.SessionMax = DefaultSessionMax
	}
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.LoginFailures, DefaultLoginFailures},
		{&c.AuditUnauthPerAddr, DefaultAuditUnauthPerAddr},
		{&c.AuditUnauthTotal, DefaultAuditUnauthTotal},
		{&c.VideoSessionsPerUser, DefaultVideoSessionsPerUser},
		{&c.VideoSessionsPerAddr, DefaultVideoSessionsPerAddr},
		{&c.ExportsPerUser, DefaultExportsPerUser},
		{&c.ExportsTotal, DefaultExportsTotal},
		{&c.MaxTokens, DefaultMaxTokens},
		{&c.TCPConnections, DefaultTCPConnections},
		{&c.TCPConnectionsPerAddr, DefaultTCPConnectionsPerAddr},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.LoginLockout == 0 {
		c.LoginLockout = DefaultLoginLockout
	}
	if c.TokenAuditInterval == 0 {
		c.TokenAuditInterval = DefaultTokenAuditInterval
	}
	if c.TCPHandshakeTimeout == 0 {
		c.TCPHandshakeTimeout = DefaultTCPHandshakeTimeout
	}
	return c
}

// Validate checks the configuration; its messages name the config key.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := validateHostPort(c.HTTPAddress, true); err != nil {
		errs = append(errs, fmt.Errorf("http.address: %w", err))
	}
	if err := validateHostPort(c.UDPAddress, false); err != nil {
		errs = append(errs, fmt.Errorf("webrtc.udp_address: %w", err))
	}
	if c.TCPAddress != "" {
		if err := validateHostPort(c.TCPAddress, false); err != nil {
			errs = append(errs, fmt.Errorf("webrtc.tcp_address: %w", err))
		}
	}
	for i, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("webrtc.public_ips[%d]: %q is not an IP address", i, ip))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("http.tls_cert: give both tls_cert and tls_key, or neither"))
	}
	if c.SessionIdle < time.Minute {
		errs = append(errs, fmt.Errorf("http.session_idle: %s is shorter than a minute", c.SessionIdle))
	}
	if c.SessionMax < c.SessionIdle {
		errs = append(errs, fmt.Errorf("http.session_max: %s is shorter than session_idle %s", c.SessionMax, c.SessionIdle))
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"http.login_failures", c.LoginFailures},
		{"http.audit_unauthenticated_per_address", c.AuditUnauthPerAddr},
		{"http.audit_unauthenticated_total", c.AuditUnauthTotal},
		{"webrtc.sessions_per_user", c.VideoSessionsPerUser},
		{"webrtc.sessions_per_address", c.VideoSessionsPerAddr},
		{"http.exports_per_user", c.ExportsPerUser},
		{"http.exports_total", c.ExportsTotal},
		{"http.max_tokens", c.MaxTokens},
		{"webrtc.tcp_connections", c.TCPConnections},
		{"webrtc.tcp_connections_per_address", c.TCPConnectionsPerAddr},
	} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s: %d: must be at least 1", f.key, f.v))
		}
	}
	if c.TokenAuditInterval < time.Second {
		errs = append(errs, fmt.Errorf("http.token_audit_interval: %s is shorter than a second", c.TokenAuditInterval))
	}
	if c.TCPHandshakeTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("webrtc.tcp_handshake_timeout: %s is shorter than 100ms", c.TCPHandshakeTimeout))
	}
	if c.LoginLockout < time.Second {
		errs = append(errs, fmt.Errorf("http.login_lockout: %s is shorter than a second", c.LoginLockout))
	}
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.MapTileURL != "" {
		u, err := url.Parse(c.MapTileURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("map.tile_url: %q is not an http(s) URL", c.MapTileURL))
		case !strings.Contains(c.MapTileURL, "{z}") || !strings.Contains(c.MapTileURL, "{x}") || !strings.Contains(c.MapTileURL, "{y}"):
			errs = append(errs, errors.New("map.tile_url: the template needs {z}, {x} and {y}"))
		}
	}
	return errors.Join(errs...)
}

// validateHostPort checks host:port. ICE addresses must have an IP (or no
// host) because the host is what gets announced in candidates.
func validateHostPort(addr string, nameAllowed bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port: %w", addr, err)
	}
	if !nameAllowed && host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host must be an IP address or empty", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}
